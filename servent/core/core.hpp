// The one interface every network's core answers (STYLE.md "The one big
// idea"): Gnutella, HTTP upload, download, control, Napster server and client,
// and the networks to come. The Driver (servent/uv) and the simulator host any
// core through it without knowing which protocol it speaks.
//
// Contract:
// - Events come in with the current Instant; a core never reads a clock,
//   touches a socket or calls back into its host from inside handle_*.
// - Actions go out through poll_action(), drained by the host after each
//   event until every core is quiet. A core names its own outgoing
//   connections (action::Connect) with ids from conn_id_space() so that two
//   cores never collide; inbound ids are the host's and have bit 63 clear.
// - poll_timeout() is the earliest Instant at which handle_timeout() should
//   run; handle_timeout() may also be called earlier (it must then do only
//   what is due).
#pragma once

#include <optional>
#include <vector>

#include "servent/core/types.hpp"
#include "wire/common/bytes.hpp"

namespace sv {

class Core {
 public:
  virtual ~Core() = default;

  // A TCP connection is up: accepted by a listener bound to this core, handed
  // over by the sniffing table (its first bytes follow in handle_bytes), or
  // the completion of this core's own action::Connect (Outbound).
  virtual void handle_connected(ConnId conn, Endpoint remote, Direction dir, Instant now) = 0;
  virtual void handle_bytes(ConnId conn, wire::ByteView bytes, Instant now) = 0;
  // The connection is gone (the host already released it); no action naming
  // it has any effect any more.
  virtual void handle_closed(ConnId conn, CloseReason reason, Instant now) = 0;
  // A datagram on a UDP socket bound to this core.
  virtual void handle_datagram(SocketId /*socket*/, Endpoint /*from*/, wire::ByteView /*bytes*/, Instant /*now*/) {}
  // An action::SendFile finished (ok) or was abandoned.
  virtual void handle_send_done(ConnId /*conn*/, bool /*ok*/, Instant /*now*/) {}
  // How far an action::SendFile has got: `bytes` of it are in the socket's
  // queue (the queue is bounded, so this trails the wire by little).
  virtual void handle_send_progress(ConnId /*conn*/, std::uint64_t /*bytes*/, Instant /*now*/) {}
  // An action::FileJob finished (on the thread pool) with this result.
  virtual void handle_file_done(JobId /*job*/, const FileResult& /*result*/, Instant /*now*/) {}
  virtual void handle_timeout(Instant now) = 0;
  // The host is stopping: queue goodbyes now; the host writes the Sends this
  // produces without waiting, then closes every connection.
  virtual void handle_shutdown(Instant /*now*/) {}

  // Our own address as a peer reached us (the local end of a TCP connection),
  // offered while wants_local_address() is true.
  virtual bool wants_local_address() const { return false; }
  virtual void handle_local_address(Endpoint /*local*/) {}

  virtual std::optional<Action> poll_action() = 0;
  virtual std::optional<Instant> poll_timeout() const = 0;
};

// Outgoing connection ids: bit 63 set, the core's space in bits 56..62, a
// sequence below. Each core type has its own space.
enum class ConnSpace : std::uint8_t {
  Gnutella = 0,
  NapsterClient = 1,
  NapsterTransfer = 2,
  StreamClient = 3,  // servent/uv/stream_client
  Torrent = 4,
  Upload = 32,    // (1 << 61)
  Download = 64,  // (1 << 62)
};
constexpr ConnId core_conn_id(ConnSpace space, std::uint64_t seq) {
  return ConnId{kCoreConnIdBit | (std::uint64_t{static_cast<std::uint8_t>(space)} << 56) |
                (seq & ((std::uint64_t{1} << 56) - 1))};
}

}  // namespace sv

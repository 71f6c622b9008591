// The DHT ties the networks together by file identity: a node publishes
// where its files can be had (urn:sha1:BASE32 -> "gnutella IP:PORT" for
// each shared file, urn:btih:HEX -> "bt IP:PORT" for each torrent it
// seeds), and `servent get` / `servent torrent get` look sources up there.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "servent/dht/overlays.hpp"
#include "servent/uv/driver.hpp"

namespace sv::cli {

// The value stored for a source: "NETWORK IP:PORT".
std::string dht_source_value(std::string_view network, Endpoint at);
// The endpoint in a value of that network (nullopt: another network's, or not one).
std::optional<Endpoint> parse_dht_source(std::string_view value, std::string_view network);

// Hands each result of a DHT node's operations to whoever started it (the
// publisher, control-socket requests): one consumer of poll_result().
class DhtOps {
 public:
  DhtOps(Driver& driver, dht::DhtCore& node);
  // `done` gets the result of operation `op` (as the core numbered it).
  void on(std::uint64_t op, std::function<void(const dht::OpResult&)> done) { waiting_[op] = std::move(done); }
  dht::DhtCore& node() { return node_; }

 private:
  dht::DhtCore& node_;
  std::map<std::uint64_t, std::function<void(const dht::OpResult&)>> waiting_;
};

// Publishes what `what()` names ((key text, value text) pairs) through a
// DHT node on the loop: new pairs within a few seconds, each again before
// its lifetime (1 h) runs out.
class DhtPublisher {
 public:
  using What = std::function<std::vector<std::pair<std::string, std::string>>()>;
  DhtPublisher(Driver& driver, DhtOps& ops, What what);
  std::uint64_t published() const { return published_; }
  std::uint64_t failed() const { return failed_; }

 private:
  void tick();
  Driver& driver_;
  DhtOps& ops_;
  What what_;
  std::map<std::pair<std::string, std::string>, Instant> last_;  // when each pair was put
  std::uint64_t published_ = 0, failed_ = 0;
};

// A short-lived DHT client on the loop (it never joins): looks a key up
// through `via` now and every `again` after, and hands each source of
// `network` it has not handed before to `found`.
class DhtSourceLookup {
 public:
  DhtSourceLookup(Driver& driver, const std::string& overlay, const dht::DhtOptions& options, Endpoint via);
  void find(std::string key, std::string network, std::function<void(Endpoint)> found, Duration again = 15s);

 private:
  void ask();
  Driver& driver_;
  std::unique_ptr<dht::DhtCore> core_;
  Endpoint via_;
  std::string key_, network_;
  std::function<void(Endpoint)> found_;
  Duration again_{};
  std::vector<Endpoint> seen_;
};

// The options `get` and `torrent get` take for it: --dht HOST:PORT,
// --dht-overlay NAME (default chord), --dht-groups K.
struct DhtLookupOptions {
  std::optional<Endpoint> via;
  std::string overlay = "chord";
  dht::DhtOptions options;
};
// From --dht, --dht-overlay and --dht-groups (UsageError when wrong).
struct Args;
DhtLookupOptions dht_lookup_options(const Args& a);

}  // namespace sv::cli

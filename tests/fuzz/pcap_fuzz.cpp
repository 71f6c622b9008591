// libFuzzer target: arbitrary bytes as a capture file through libpcap, our
// link/IP/TCP parsing, the TCP reassembler and every protocol decoder.
// Properties checked: messages come in frame order, never from a frame past
// the last one read, and a descriptor's raw bytes always frame exactly one
// descriptor of the length its header announces.
#include <cstdint>
#include <cstdlib>

#include "servent/pcap/capture.hpp"
#include "wire/gnutella/descriptors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::uint64_t last_frame = 0;
  auto res = sv::pcap::decode_bytes({data, size}, [&](sv::pcap::Message&& m) {
    if (m.frame < last_frame) std::abort();
    last_frame = m.frame;
    if (!m.raw.empty()) {
      auto h = sv::wire::gnutella::decode_header(m.raw);
      if (!h || h->payload_length + sv::wire::gnutella::kHeaderSize != m.raw.size()) std::abort();
    }
  });
  if (last_frame > res.frames) std::abort();
  return 0;
}

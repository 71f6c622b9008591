// libFuzzer target: bytes as tracker traffic: an announce query string, an
// HTTP announce or scrape reply, a UDP request and response, a magnet link.
// Properties: whatever decodes re-encodes to something that decodes to the
// same (UDP requests: to the same leading bytes); compact peer lists keep
// every whole entry.
#include <algorithm>
#include <cstdint>
#include <string>

#include "tests/fuzz/fuzz_check.hpp"
#include "wire/bt/tracker.hpp"

namespace bt = sv::wire::bt;
using sv::wire::Bytes;
using sv::wire::ByteView;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView in(data, size);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto a = bt::decode_announce_query(text)) {
    const std::string url = bt::announce_url("http://t/announce", *a);
    auto back = bt::decode_announce_query(url.substr(url.find('?') + 1));
    FUZZ_CHECK(back && back->info_hash == a->info_hash && back->peer_id == a->peer_id && back->port == a->port &&
               back->left == a->left && back->event == a->event);
  }
  if (auto r = bt::decode_announce_reply(in)) {
    auto back = bt::decode_announce_reply(bt::encode_announce_reply(*r));
    FUZZ_CHECK(back && back->failure == r->failure);
    if (r->failure.empty()) FUZZ_CHECK(back->peers == r->peers);
  }
  if (auto s = bt::decode_scrape_reply(in)) (void)bt::encode_scrape_reply(*s);
  if (auto u = bt::decode_udp_request(in)) {
    const Bytes again = bt::encode_udp_request(*u);
    FUZZ_CHECK(again.size() <= size && std::equal(again.begin(), again.end(), in.begin()));
    auto back = bt::decode_udp_request(again);
    FUZZ_CHECK(back.ok() && back->action == u->action && back->transaction == u->transaction);
  }
  if (auto u = bt::decode_udp_response(in)) {
    auto back = bt::decode_udp_response(bt::encode_udp_response(*u));
    FUZZ_CHECK(back.ok() && back->action == u->action && back->transaction == u->transaction);
    if (u->action == bt::UdpAction::Announce) FUZZ_CHECK(back->reply.peers == u->reply.peers && u->reply.peers.size() == (size - 20) / 6);
  }
  if (auto m = bt::decode_magnet(text)) {
    auto back = bt::decode_magnet(bt::encode_magnet(*m));
    FUZZ_CHECK(back && back->info_hash == m->info_hash && back->trackers == m->trackers && back->name == m->name);
  }
  return 0;
}

// libFuzzer target: the Napster codec. Input: a byte stream of frames.
// Properties: whole vs chunked framing agree and never consume past the
// input; every typed decoder either refuses or gives a value whose encoding
// decodes to the same value (names with quotes, spaces and backslashes
// included); split helpers return views inside the payload.
#include <cstdint>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_check.hpp"
#include "wire/napster/napster.hpp"

namespace nap = sv::wire::napster;
using sv::wire::ByteView;

namespace {

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void check_payload(std::string_view p) {
  if (auto a = nap::split_args(p)) {
    for (auto v : *a) FUZZ_CHECK(inside(v, p));
  }
  for (std::size_t lead = 0; lead < 4; ++lead) {
    for (std::size_t tail = 0; tail < 9; ++tail) {
      if (auto a = nap::split_around_name(p, lead, tail)) {
        FUZZ_CHECK(a->size() == lead + 1 + tail);
        for (auto v : *a) FUZZ_CHECK(inside(v, p));
      }
    }
  }
  if (auto e = nap::decode_share(p)) {
    auto again = nap::decode_share(nap::encode_share(*e));
    FUZZ_CHECK(again.ok() && again->name == e->name && again->size == e->size && again->length == e->length);
  }
  if (auto r = nap::decode_search_result(p)) {
    auto again = nap::decode_search_result(nap::encode_search_result(*r));
    FUZZ_CHECK(again.ok() && again->file.name == r->file.name && again->nick == r->nick && again->ip == r->ip);
  }
  if (auto n = nap::decode_nick_file(p)) {
    auto again = nap::decode_nick_file(nap::encode_nick_file(*n));
    FUZZ_CHECK(again.ok() && again->name == n->name && again->nick == n->nick && again->speed == n->speed);
  }
  if (auto t = nap::decode_transfer_ack(p)) {
    auto again = nap::decode_transfer_ack(nap::encode_transfer_ack(*t));
    FUZZ_CHECK(again.ok() && again->name == t->name && again->port == t->port && again->ip == t->ip);
  }
  if (auto q = nap::decode_search(p)) {
    // Phrases with a quote followed by a space cannot be re-sent unambiguously.
    bool plain = true;
    for (const auto& c : q->contains) plain = plain && c.find('"') == std::string::npos && !c.empty();
    if (plain) {
      auto again = nap::decode_search(nap::encode_search(*q));
      FUZZ_CHECK(again.ok() && again->contains == q->contains && again->max_results == q->max_results);
    }
  }
  (void)nap::decode_login(p);
  (void)nap::decode_new_user(p);
  (void)nap::decode_share_dir(p);
  (void)nap::decode_browse_result(p);
  (void)nap::decode_stats(p);
  (void)nap::decode_remove(p);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView in(data, size);
  std::vector<std::pair<std::uint16_t, std::string>> whole;
  std::size_t at = 0;
  for (;;) {
    std::size_t used = 0;
    auto f = nap::decode_frame(in.subspan(at), used, 4096);
    if (!f) break;
    FUZZ_CHECK(used >= nap::kHeaderSize && at + used <= size);
    whole.emplace_back(f->type, std::string(f->payload));
    check_payload(f->payload);
    (void)nap::describe(*f);
    at += used;
  }
  // Chunked: the same frames.
  const std::size_t chunk = size == 0 ? 1 : 1 + data[0] % 17;
  nap::Framer framer(4096);
  std::size_t seen = 0;
  for (std::size_t i = 0; i < size; i += chunk) {
    framer.feed(in.subspan(i, std::min(chunk, size - i)));
    for (;;) {
      auto f = framer.next();
      if (!f) break;
      FUZZ_CHECK(seen < whole.size());
      FUZZ_CHECK(f->type == whole[seen].first && f->payload == whole[seen].second);
      ++seen;
    }
  }
  FUZZ_CHECK(seen == whole.size());
  return 0;
}

#include <doctest/doctest.h>

#include "unit/wire/vectors.hpp"
#include "wire/gnutella/framer.hpp"

using namespace sv;
using namespace sv::wire::gnutella;
namespace vec = sv::test::vec;

namespace {

// The five captured descriptors back to back, as a TCP stream would carry them.
wire::Bytes stream() {
  wire::Bytes s;
  for (const auto* d : {&vec::kPing, &vec::kPong, &vec::kQuery, &vec::kQueryHit, &vec::kPush}) {
    s.insert(s.end(), d->begin(), d->end());
  }
  return s;
}

std::vector<wire::Bytes> frames_of(const wire::Bytes& s, std::size_t chunk) {
  Framer f;
  std::vector<wire::Bytes> out;
  for (std::size_t i = 0; i < s.size(); i += chunk) {
    f.feed(wire::ByteView(s).subspan(i, std::min(chunk, s.size() - i)));
    for (;;) {
      auto r = f.next();
      if (r.need_more()) break;
      REQUIRE(r.ok());
      out.push_back(encode_descriptor(r->header, r->payload));
    }
  }
  CHECK(f.buffered() == 0);
  return out;
}

}  // namespace

TEST_CASE("framer_splits_captured_stream_into_descriptors") {
  auto frames = frames_of(stream(), stream().size());
  REQUIRE(frames.size() == 5);
  CHECK(frames[0] == vec::kPing);
  CHECK(frames[1] == vec::kPong);
  CHECK(frames[2] == vec::kQuery);
  CHECK(frames[3] == vec::kQueryHit);
  CHECK(frames[4] == vec::kPush);
}

TEST_CASE("framer_every_chunk_size_gives_same_frames") {
  const auto s = stream();
  const auto expected = frames_of(s, s.size());
  for (std::size_t chunk = 1; chunk <= s.size(); ++chunk) {
    CAPTURE(chunk);
    CHECK(frames_of(s, chunk) == expected);
  }
}

TEST_CASE("framer_every_truncated_prefix_is_need_more") {
  for (const auto* d : {&vec::kPing, &vec::kPong, &vec::kQuery, &vec::kQueryHit, &vec::kPush}) {
    for (std::size_t n = 0; n < d->size(); ++n) {
      Framer f;
      f.feed(wire::ByteView(*d).first(n));
      CHECK(f.next().need_more());
    }
  }
}

TEST_CASE("framer_rejects_4gib_payload_announcement") {
  Framer f;
  auto h = vec::kPing;
  h[19] = h[20] = h[21] = h[22] = 0xff;  // payload length 0xffffffff
  f.feed(h);
  CHECK(f.next().error() == wire::WireError::TooLarge);
}

TEST_CASE("framer_payload_limit_is_configurable") {
  Framer f(100);
  f.feed(vec::kQueryHit);  // 177-byte payload
  CHECK(f.next().error() == wire::WireError::TooLarge);
  Framer g(177);
  g.feed(vec::kQueryHit);
  CHECK(g.next().ok());
}

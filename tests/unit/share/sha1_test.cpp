#include <doctest/doctest.h>

#include "share/sha1.hpp"
#include "wire/common/bytes.hpp"

using namespace sv::share;

TEST_CASE("sha1_urn_of_the_body_gtk_gnutella_served") {
  // 08_push_giv_callback_download.pcap: gtk-gnutella serves this 39-byte body
  // with X-Gnutella-Content-URN: urn:sha1:QEXMLRD6GKGWLOQLGT7O4ZEAXARBGBD3.
  CHECK(sha1_urn(sha1_of("Hello from gtk-gnutella over loopback!\n")) == "urn:sha1:QEXMLRD6GKGWLOQLGT7O4ZEAXARBGBD3");
}

TEST_CASE("sha1_known_vectors") {
  CHECK(sv::wire::to_hex(sha1_of("abc")) == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(sha1_urn(sha1_of("")) == "urn:sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ");
  CHECK(sha1_urn(sha1_of("abc")) == "urn:sha1:VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE5");
  Sha1Hasher h;
  h.update("a", 1);
  h.update("bc", 2);
  CHECK(h.finish() == sha1_of("abc"));
  CHECK(h.finish() == sha1_of(""));  // reusable after finish
}

TEST_CASE("sha1_urn_parsing") {
  const auto abc = sha1_of("abc");
  CHECK(parse_sha1_urn("urn:sha1:VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE5") == abc);
  CHECK(parse_sha1_urn("URN:SHA1:vgmt4nsha2awvor6evyxqugcnsonbwe5") == abc);
  CHECK(parse_sha1_urn("sha1:VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE5") == abc);
  CHECK(parse_sha1_urn("urn:sha1:a9993e364706816aba3e25717850c26c9cd0d89d") == abc);
  CHECK_FALSE(parse_sha1_urn("urn:sha1:VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE"));
  CHECK_FALSE(parse_sha1_urn("urn:sha1:VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE1"));  // '1' is not base32
  CHECK_FALSE(parse_sha1_urn("urn:tree:tiger/:ABC"));
  CHECK_FALSE(parse_sha1_urn("urn:"));
}

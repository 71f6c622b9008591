#include <doctest/doctest.h>

#include "unit/wire/vectors.hpp"
#include "wire/gnutella/vendor.hpp"

using namespace sv::wire;
using namespace sv::wire::gnutella;
using sv::test::hex;
namespace vec = sv::test::vec;

TEST_CASE("gtk_gnutellas_messages_supported_from_capture_09_decodes_and_re_encodes_byte_for_byte") {
  auto vm = decode_vendor(vec::kMessagesSupported);
  REQUIRE(vm);
  CHECK(vm->vendor == kVendorGeneric);
  CHECK(vm->id == kVmMessagesSupported);
  CHECK(vm->version == 0);
  CHECK(vendor_message_name(vm->vendor, vm->id) == "Messages-Supported");
  auto list = decode_messages_supported(vm->body);
  REQUIRE(list);
  REQUIRE(list->size() == 27);
  CHECK((*list)[0] == SupportedMessage{kVendorBear, kVmHopsFlow, 1});
  CHECK((*list)[2] == SupportedMessage{kVendorBear, kVmQueryStatusRequest, 1});
  CHECK((*list)[3] == SupportedMessage{kVendorBear, kVmQueryStatusResponse, 1});
  CHECK((*list)[26] == SupportedMessage{{'L', 'I', 'M', 'E'}, 24, 2});
  Bytes again;
  encode_vendor(again, VendorMessage{kVendorGeneric, kVmMessagesSupported, 0, encode_messages_supported(*list)});
  CHECK(again == vec::kMessagesSupported);
}

TEST_CASE("gtk_gnutellas_features_supported_and_hsep_from_capture_09_decode") {
  auto vm = decode_vendor(vec::kFeaturesSupported);
  REQUIRE(vm);
  CHECK(vm->id == kVmFeaturesSupported);
  auto f = decode_features_supported(vm->body);
  REQUIRE(f);
  REQUIRE(f->size() == 6);
  CHECK((*f)[0] == SupportedFeature{{'H', 'S', 'E', 'P'}, 1});
  CHECK((*f)[3] == SupportedFeature{{'F', '2', 'F', 'T'}, 0xFFFF});
  CHECK((*f)[5] == SupportedFeature{{'T', 'L', 'S', '!'}, 1});
  auto h = decode_hsep(vec::kHsep);
  REQUIRE(h);
  REQUIRE(h->size() == 1);
  CHECK((*h)[0] == HsepHop{1, 2, 113});
}

TEST_CASE("vendor_messages_of_every_length_decode_or_fail_cleanly") {
  // Every prefix of the real messages: under 8 bytes malformed, else a
  // message whose list decodes only at exactly the length its count says.
  for (const Bytes* full : {&vec::kMessagesSupported, &vec::kFeaturesSupported}) {
    for (std::size_t n = 0; n <= full->size(); ++n) {
      CAPTURE(n);
      auto vm = decode_vendor(ByteView(full->data(), n));
      if (n < 8) {
        CHECK(vm.error() == WireError::Malformed);
        continue;
      }
      REQUIRE(vm);
      const bool whole = n == full->size();
      if (vm->id == kVmMessagesSupported) {
        CHECK(decode_messages_supported(vm->body).ok() == whole);
      } else {
        CHECK(decode_features_supported(vm->body).ok() == whole);
      }
    }
  }
  // A count promising more than is there, or less.
  CHECK_FALSE(decode_messages_supported(hex("0200 42454152 0b00 0100")).ok());
  CHECK_FALSE(decode_messages_supported(hex("0000 42454152 0b00 0100")).ok());
  CHECK(decode_messages_supported(hex("0000")).ok());
  // Query status: exactly two bytes.
  CHECK(*decode_query_status(hex("2a00")) == 42);
  CHECK(*decode_query_status(hex("ffff")) == kQueryStatusStop);
  CHECK_FALSE(decode_query_status(hex("2a")).ok());
  CHECK_FALSE(decode_query_status(hex("2a0000")).ok());
  // HSEP: whole 24-byte hops, at least one, at most the cap.
  CHECK_FALSE(decode_hsep({}).ok());
  CHECK_FALSE(decode_hsep(ByteView(vec::kHsep.data(), 23)).ok());
  Bytes many;
  for (int i = 0; i < 17; ++i) many.insert(many.end(), vec::kHsep.begin(), vec::kHsep.end());
  CHECK_FALSE(decode_hsep(many).ok());
  CHECK(decode_hsep(ByteView(many.data(), 16 * 24)).ok());
}

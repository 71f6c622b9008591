#include "wire/gnutella/vendor.hpp"

#include <algorithm>

namespace sv::wire::gnutella {

namespace {
VendorCode code_at(const std::uint8_t* p) {
  VendorCode v{};
  std::copy_n(p, 4, v.begin());
  return v;
}
}  // namespace

Result<VendorMessage> decode_vendor(ByteView p) {
  if (p.size() < 8) return WireError::Malformed;
  return VendorMessage{code_at(p.data()), get_le16(p.data() + 4), get_le16(p.data() + 6), Bytes(p.begin() + 8, p.end())};
}

void encode_vendor(Bytes& out, const VendorMessage& m) {
  out.insert(out.end(), m.vendor.begin(), m.vendor.end());
  put_le16(out, m.id);
  put_le16(out, m.version);
  put_bytes(out, m.body);
}

namespace {
// Count[2] LE, then exactly Count entries of `entry` bytes, each read by `read`.
template <class T, class Read>
Result<std::vector<T>> decode_counted(ByteView body, std::size_t entry, Read read) {
  if (body.size() < 2) return WireError::Malformed;
  const std::size_t count = get_le16(body.data());
  if (body.size() != 2 + count * entry) return WireError::Malformed;
  std::vector<T> out;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) out.push_back(read(body.data() + 2 + i * entry));
  return out;
}
}  // namespace

Result<std::vector<SupportedMessage>> decode_messages_supported(ByteView body) {
  return decode_counted<SupportedMessage>(body, 8, [](const std::uint8_t* e) {
    return SupportedMessage{code_at(e), get_le16(e + 4), get_le16(e + 6)};
  });
}

Bytes encode_messages_supported(const std::vector<SupportedMessage>& list) {
  Bytes out;
  put_le16(out, static_cast<std::uint16_t>(list.size()));
  for (const auto& m : list) {
    out.insert(out.end(), m.vendor.begin(), m.vendor.end());
    put_le16(out, m.id);
    put_le16(out, m.version);
  }
  return out;
}

Result<std::vector<SupportedFeature>> decode_features_supported(ByteView body) {
  return decode_counted<SupportedFeature>(body, 6, [](const std::uint8_t* e) {
    return SupportedFeature{code_at(e), get_le16(e + 4)};
  });
}

Result<std::uint16_t> decode_query_status(ByteView body) {
  if (body.size() != 2) return WireError::Malformed;
  return get_le16(body.data());
}

Result<std::vector<HsepHop>> decode_hsep(ByteView p, std::size_t max_hops) {
  if (p.empty() || p.size() % 24 != 0 || p.size() / 24 > max_hops) return WireError::Malformed;
  std::vector<HsepHop> out;
  for (std::size_t i = 0; i < p.size(); i += 24) {
    out.push_back({get_le64(p.data() + i), get_le64(p.data() + i + 8), get_le64(p.data() + i + 16)});
  }
  return out;
}

Bytes encode_hsep(const std::vector<HsepHop>& hops) {
  Bytes out;
  for (const auto& h : hops) {
    put_le64(out, h.nodes);
    put_le64(out, h.files);
    put_le64(out, h.kib);
  }
  return out;
}

std::string_view vendor_message_name(const VendorCode& vendor, std::uint16_t id) {
  if (vendor == kVendorGeneric) {
    if (id == kVmMessagesSupported) return "Messages-Supported";
    if (id == kVmFeaturesSupported) return "Features-Supported";
  }
  if (vendor == kVendorBear) {
    if (id == kVmHopsFlow) return "Hops-Flow";
    if (id == kVmConnectBack) return "TCP-Connect-Back";
    if (id == kVmQueryStatusRequest) return "Query-Status-Request";
    if (id == kVmQueryStatusResponse) return "Query-Status-Response";
  }
  return {};
}

}  // namespace sv::wire::gnutella

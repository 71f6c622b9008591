// RFC 4648 §6 base32 (upper case out, either case in, no padding), as HUGE
// 0.94 §3 (urn:sha1) and BEP 9 (magnet btih) use it for 20-byte digests.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sv::wire {

std::string base32_encode(const std::uint8_t* data, std::size_t n);
// Exactly 32 characters -> 20 bytes; nullopt for any other input.
std::optional<std::array<std::uint8_t, 20>> base32_decode_sha1(std::string_view s);

}  // namespace sv::wire

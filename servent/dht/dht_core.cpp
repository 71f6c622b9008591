#include "servent/dht/dht_core.hpp"

#include <fmt/format.h>

#include "share/sha1.hpp"

namespace sv::dht {

std::string short_id(const NodeId& id) {
  std::string s;
  for (int i = 0; i < 4; ++i) s += fmt::format("{:02x}", id[static_cast<std::size_t>(i)]);
  return s;
}

NodeId node_id_for(Endpoint e, const Ring& ring) { return ring.reduce(share::sha1_of(e.to_string())); }

NodeId key_id(std::string_view key, const Ring& ring) { return ring.reduce(share::sha1_of(key)); }

}  // namespace sv::dht

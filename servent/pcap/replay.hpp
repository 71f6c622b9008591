// `servent pcap replay FILE --to HOST:PORT [--stream N]`: plays the client
// side of a captured Gnutella (handshake, then its descriptors, Ping/Query
// GUIDs rewritten to fresh ones) or HTTP conversation against a live servent,
// and compares what comes back with what the capture holds: the handshake
// status, the kinds and number of replies to each request, HTTP status and
// length. Prints one line per comparison; exit 0 when all are the same.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "servent/core/types.hpp"

namespace sv::pcap {

int replay(const std::string& file, Endpoint to, std::optional<std::int64_t> stream, std::chrono::milliseconds wait);

}  // namespace sv::pcap

// Reads pcap and pcapng files with libpcap and feeds a Decoder.
#pragma once

#include <functional>
#include <string>

#include "servent/pcap/decoder.hpp"

namespace sv::pcap {

struct CaptureResult {
  bool opened = false;
  std::string error;      // why the file could not be opened, or where reading stopped
  std::uint64_t frames = 0;
  int linktype = -1;
  DecoderStats stats;
};

// Decodes every frame of `path`, handing each message to `out` in capture
// order. A file cut short stops the reading with `error` set; what was read
// is still decoded.
CaptureResult decode_file(const std::string& path, const std::function<void(Message&&)>& out,
                          DecodeOptions options = {});
// The same from capture bytes in memory (fuzzing, tests).
CaptureResult decode_bytes(wire::ByteView bytes, const std::function<void(Message&&)>& out, DecodeOptions options = {});

}  // namespace sv::pcap

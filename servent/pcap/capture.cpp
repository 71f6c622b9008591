#include "servent/pcap/capture.hpp"

#include <pcap/pcap.h>

#include <cstdio>

namespace sv::pcap {

namespace {
CaptureResult decode_pcap(pcap_t* p, const char* errbuf, const std::function<void(Message&&)>& out,
                          DecodeOptions options);
}

CaptureResult decode_file(const std::string& path, const std::function<void(Message&&)>& out, DecodeOptions options) {
  char errbuf[PCAP_ERRBUF_SIZE] = {0};
  pcap_t* p = pcap_open_offline(path.c_str(), errbuf);
  return decode_pcap(p, errbuf, out, options);
}

CaptureResult decode_bytes(wire::ByteView bytes, const std::function<void(Message&&)>& out, DecodeOptions options) {
  char errbuf[PCAP_ERRBUF_SIZE] = {0};
  FILE* f = fmemopen(const_cast<std::uint8_t*>(bytes.data()), bytes.size(), "rb");
  if (!f) {
    CaptureResult res;
    res.error = "cannot read from memory";
    return res;
  }
  pcap_t* p = pcap_fopen_offline(f, errbuf);  // owns f from here
  if (!p) std::fclose(f);
  return decode_pcap(p, errbuf, out, options);
}

namespace {
CaptureResult decode_pcap(pcap_t* p, const char* errbuf, const std::function<void(Message&&)>& out,
                          DecodeOptions options) {
  CaptureResult res;
  if (!p) {
    res.error = errbuf;
    return res;
  }
  res.opened = true;
  res.linktype = pcap_datalink(p);
  double first = -1;
  Decoder dec(out, options);
  for (;;) {
    pcap_pkthdr* hdr = nullptr;
    const u_char* data = nullptr;
    int rc = pcap_next_ex(p, &hdr, &data);
    if (rc == PCAP_ERROR_BREAK) break;  // end of file
    if (rc != 1) {
      res.error = pcap_geterr(p);
      break;
    }
    ++res.frames;
    const double t = static_cast<double>(hdr->ts.tv_sec) + static_cast<double>(hdr->ts.tv_usec) / 1e6;
    if (first < 0) first = t;
    ParseError e;
    auto pkt = parse_packet(res.linktype, wire::ByteView(data, hdr->caplen), e);
    if (!pkt) {
      dec.not_decoded(e);
      continue;
    }
    dec.packet(*pkt, res.frames, t - first);
  }
  dec.finish(res.frames);
  res.stats = dec.stats();
  pcap_close(p);
  return res;
}
}  // namespace

}  // namespace sv::pcap

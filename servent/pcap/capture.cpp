#include "servent/pcap/capture.hpp"

#include <pcap/pcap.h>

namespace sv::pcap {

CaptureResult decode_file(const std::string& path, const std::function<void(Message&&)>& out, DecodeOptions options) {
  CaptureResult res;
  char errbuf[PCAP_ERRBUF_SIZE] = {0};
  pcap_t* p = pcap_open_offline(path.c_str(), errbuf);
  if (!p) {
    res.error = errbuf;
    return res;
  }
  res.opened = true;
  res.linktype = pcap_datalink(p);
  double first = -1;
  Decoder dec([&](Message&& m) { out(std::move(m)); }, options);
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

}  // namespace sv::pcap

// `servent pcap decode|check FILE`: see kPcapHelp in pcap_tool.cpp.
#pragma once

#include <string>
#include <vector>

namespace sv::pcap {

int cmd_pcap(const std::vector<std::string>& argv);
// The text line `decode` prints for a message.
struct Message;
std::string text_line(const Message& m);
std::string json_line(const Message& m);

}  // namespace sv::pcap

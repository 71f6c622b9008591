// Napster (OpenNap protocol) client-server messages.
// Source: "napster messages" by drscholl (napster.txt, OpenNap's protocol
// document), section 2 "Client-Server protocol" for the frame and the quoting
// convention, section 3 for the numbered messages; and what opennap-ng 0.50
// and TekNap 1.3g do on the wire (../shared/captures/napster).
//
// Frame (napster.txt §2):
//
//   0       2       4
//   +-------+-------+------------------------------+
//   | len   | type  | payload (len bytes, ASCII)    |
//   +-------+-------+------------------------------+
//   len, type: u16 little-endian; len counts the payload only.
//
// Payload arguments are separated by single spaces; names and client strings
// are in double quotes, with no escaping (napster.txt §2: "it doesn't do
// escaping of quotes"), so a name may hold spaces, backslashes and quotes.
// A message with one quoted name is split around it from both ends: the
// words before it from the left, the fixed number of words after it from the
// right, and the name is what lies between its first and last quote.
//
// IP addresses (201, 204, 213, 501, 604) are the four address bytes in network
// order read as a little-endian u32, printed in decimal: 127.0.0.1 is
// 16777343 (see to_napster_ip).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wire/common/bytes.hpp"
#include "wire/common/result.hpp"

namespace sv::wire::napster {

inline constexpr std::size_t kHeaderSize = 4;
static_assert(kHeaderSize == 2 + 2);
// opennap-ng accepts a payload of 2048 bytes and drops a client that sends more.
inline constexpr std::size_t kDefaultMaxPayload = 2048;

// Message types (napster.txt §3), the ones this code speaks or names.
enum Type : std::uint16_t {
  kError = 0,             // server: login error text
  kLogin = 2,             // client: <nick> <password> <port> "<client-info>" <link-type> [...]
  kLoginAck = 3,          // server: <email>
  kVersionCheck = 4,      // (opennap-ng echoes it empty)
  kNewUserQuery = 6,      // client: <nick>  (is it free?)
  kNewUserLogin = 7,      // client: <nick> <password> <port> "<client-info>" <link-type> <email>
  kNickOk = 8,            // server: nick is free
  kNickTaken = 9,         // server: nick is registered
  kNickInvalid = 10,      // server: nick is not valid
  kShare = 100,           // client: "<filename>" <md5> <size> <bitrate> <frequency> <time>
  kRemove = 102,          // client: "<filename>"
  kRemoveAll = 110,       // client: (empty)
  kSearch = 200,          // client: [FILENAME CONTAINS "..."] MAX_RESULTS <n> [LINESPEED|BITRATE|FREQ <cmp> <v>]
  kSearchResult = 201,    // server: "<filename>" <md5> <size> <bitrate> <freq> <length> <nick> <ip> <link-type>
  kSearchEnd = 202,       // server: (empty)
  kDownloadRequest = 203, // client: <nick> "<filename>"
  kDownloadAck = 204,     // server: <nick> <ip> <port> "<filename>" <md5> <link-type>
  kPrivateMessage = 205,  // both: <nick> <text>
  kDownloadError = 206,   // server: <nick> "<filename>"
  kBrowse = 211,          // client: <nick>
  kBrowseResult = 212,    // server: <nick> "<filename>" <md5> <size> <bitrate> <frequency> <time>
  kBrowseEnd = 213,       // server: <nick> [<ip>]
  kStats = 214,           // server: <users> <files> <gigabytes>
  kDownloading = 218,     // client: a download started (empty)
  kDownloadDone = 219,    // client: a download ended (empty)
  kUploading = 220,       // client: an upload started (empty)
  kUploadDone = 221,      // client: an upload ended (empty)
  kServerError = 404,     // server: <text>
  kAltDownloadRequest = 500,  // client: <nick> "<filename>" (the sharer is firewalled)
  kAltDownloadAck = 501,  // server, to the sharer: <nick> <ip> <port> "<filename>" <md5> <speed>
  kWhois = 603,           // client: <nick>
  kWhoisResponse = 604,   // server: <nick> "<level>" <time> "<channels>" "<status>" <shared> <down> <up> <link> "<client>"
  kWhowas = 605,          // server: <nick> "<level>" <last-seen>  (the nick is not online)
  kUploadRequest = 607,   // server, to the sharer: <nick> "<filename>" [<speed>]
  kUploadAccept = 608,    // client (the sharer): <nick> "<filename>"
  kMotd = 621,            // server: one line of the message of the day
  kDataPort = 703,        // client: <port> (change data port)
  kPing = 751,            // <user>
  kPong = 752,            // <user>
  kShareDir = 870,        // client (TekNap): "<folder>" "<file>" <md5> <size> <bitrate> <freq> <time> [...]
};
// A short name for logs and pcap decode ("login", "search-result", ...); "type-N" for others.
std::string type_name(std::uint16_t type);

struct Frame {
  std::uint16_t type = 0;
  std::string_view payload;
};

// 127.0.0.1 (host order 0x7f000001) <-> 16777343.
constexpr std::uint32_t to_napster_ip(std::uint32_t host_order) {
  return ((host_order & 0xffu) << 24) | ((host_order & 0xff00u) << 8) | ((host_order >> 8) & 0xff00u) |
         (host_order >> 24);
}
constexpr std::uint32_t from_napster_ip(std::uint32_t napster) { return to_napster_ip(napster); }

// Appends one frame. A payload over 65535 bytes cannot be framed; callers
// keep payloads under the peer's cap (encoders here never exceed it for
// names under 1 KiB).
void append_frame(Bytes& out, std::uint16_t type, std::string_view payload);
Bytes encode_frame(std::uint16_t type, std::string_view payload);

// Decodes one frame from the front of `in`: NeedMore for a prefix, TooLarge
// when the length field exceeds max_payload (the stream cannot be trusted
// any more: opennap-ng drops the client). `consumed` is set on success.
Result<Frame> decode_frame(ByteView in, std::size_t& consumed, std::size_t max_payload = kDefaultMaxPayload);

// Incremental framer over a TCP stream (same contract as the Gnutella one:
// the payload view stays valid until the next feed() or next()).
class Framer {
 public:
  explicit Framer(std::size_t max_payload = kDefaultMaxPayload) : max_payload_(max_payload) {}
  void feed(ByteView bytes);
  Result<Frame> next();
  std::size_t buffered() const { return buf_.size() - pos_; }
  // Takes the unconsumed bytes.
  Bytes take_rest();

 private:
  Bytes buf_;
  std::size_t pos_ = 0;
  std::size_t max_payload_;
};

// --- arguments --------------------------------------------------------------

// Splits arguments left to right: words separated by spaces; an argument that
// starts with '"' runs to the next '"' that is followed by a space or the end
// (quotes are not escaped), and is returned without its quotes. Malformed for
// an unterminated quote. Used where a message has no fixed shape (search, login).
Result<std::vector<std::string_view>> split_args(std::string_view payload);

// Splits `<lead words> "<name>" <tail words>`: exactly `lead` words, then the
// name from the next '"' to the last '"' before exactly `tail` words. The name
// may contain anything but NUL. Element `lead` of the result is the name.
Result<std::vector<std::string_view>> split_around_name(std::string_view payload, std::size_t lead, std::size_t tail);

// Quotes a name the way clients and servers do: "<name>" with no escaping.
// Names with a '"' followed by a space still decode through split_around_name.
std::string quote(std::string_view s);

// A decimal u64 with no sign, no leading '+', at most 20 digits.
std::optional<std::uint64_t> parse_u64(std::string_view s);

// --- messages -----------------------------------------------------------------
// decode_* take a payload; Malformed when the arguments do not fit. encode_*
// return the payload (append_frame adds the header).

struct Login {  // 2; also 7 (new user) with email set
  std::string nick, password;
  std::uint16_t port = 0;  // data port; 0 = firewalled
  std::string client;      // "<client-info>"
  std::uint32_t link = 0;  // link type 0..10
  std::string email;       // 7 only
};
Result<Login> decode_login(std::string_view payload);
Result<Login> decode_new_user(std::string_view payload);
std::string encode_login(const Login& l);
std::string encode_new_user(const Login& l);

struct ShareEntry {  // 100, and one file of 870 / 212 / 201
  std::string name;
  std::string md5;  // as sent (32 hex, or a word like NOMD5COMPUTED)
  std::uint64_t size = 0;
  std::uint32_t bitrate = 0, freq = 0, length = 0;
};
Result<ShareEntry> decode_share(std::string_view payload);
std::string encode_share(const ShareEntry& e);
// 870: a folder and one or more files in it; names are folder + file.
Result<std::vector<ShareEntry>> decode_share_dir(std::string_view payload);
std::string encode_share_dir(std::string_view folder, const std::vector<ShareEntry>& files);
// 102: the name, quoted or not.
Result<std::string> decode_remove(std::string_view payload);

enum class Compare : std::uint8_t { AtLeast, AtBest, EqualTo };
std::string_view to_string(Compare c);  // "AT LEAST", "AT BEST", "EQUAL TO"
struct Limit {
  Compare cmp = Compare::AtLeast;
  std::uint32_t value = 0;
  bool accepts(std::uint32_t v) const {
    return cmp == Compare::AtLeast ? v >= value : cmp == Compare::AtBest ? v <= value : v == value;
  }
};
struct SearchQuery {  // 200
  std::vector<std::string> contains;  // each FILENAME CONTAINS "..." phrase
  std::uint32_t max_results = 100;
  std::optional<Limit> linespeed, bitrate, freq;
};
Result<SearchQuery> decode_search(std::string_view payload);
std::string encode_search(const SearchQuery& q);

struct SearchResult {  // 201 (and 212 without ip/link)
  ShareEntry file;
  std::string nick;
  std::uint32_t ip = 0;  // host order
  std::uint32_t link = 0;
};
Result<SearchResult> decode_search_result(std::string_view payload);
std::string encode_search_result(const SearchResult& r);
// 212: <nick> "<filename>" <md5> <size> <bitrate> <frequency> <time>
Result<SearchResult> decode_browse_result(std::string_view payload);
std::string encode_browse_result(std::string_view nick, const ShareEntry& e);

struct NickFile {  // 203, 206, 500, 607, 608: <nick> "<filename>" [<speed>]
  std::string nick, name;
  std::optional<std::uint32_t> speed;  // 607 only, newer servers
};
Result<NickFile> decode_nick_file(std::string_view payload);
std::string encode_nick_file(const NickFile& n);

struct TransferAck {  // 204 and 501: <nick> <ip> <port> "<filename>" <md5> <speed>
  std::string nick;
  std::uint32_t ip = 0;  // host order
  std::uint16_t port = 0;
  std::string name, md5;
  std::uint32_t link = 0;
};
Result<TransferAck> decode_transfer_ack(std::string_view payload);
std::string encode_transfer_ack(const TransferAck& a);

struct Stats {  // 214
  std::uint64_t users = 0, files = 0, gigabytes = 0;
};
Result<Stats> decode_stats(std::string_view payload);
std::string encode_stats(const Stats& s);

// A one-line, human-readable rendering of a frame for logs and `pcap decode`:
// "search-result \"name\" size=... nick=... ip=127.0.0.1 ..." or the raw
// payload for types without a decoder.
std::string describe(const Frame& f);

}  // namespace sv::wire::napster

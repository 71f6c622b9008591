// Byte vectors taken from real captures of gtk-gnutella 1.2.3
// (../shared/captures/gtk-gnutella/, copied into pcap-fixtures/). Each names
// its capture and frame number.
#pragma once

#include "support/bytes.hpp"

namespace sv::test::vec {

// 01_leaf_handshake_ping_query_hit_plain.pcap, frame 10: Ping, TTL 1.
inline const wire::Bytes kPing = hex("e0415c0df2a7b333ffa4a3946caff200 00 01 00 00000000");

// Same capture, frame 12: gtk-gnutella's Pong (41-byte payload with GGEP VC/UP/DU/TLS).
inline const wire::Bytes kPong = hex(
    "e0415c0df2a7b333ffa4a3946caff200 01 01 00 29000000"
    "ce18 7f000001 02000000 80000000"
    "c30256434547544b47830255504302ff32024455410483544c5340");

// Same capture, frame 14: Query "interop", min-speed 0x8000, "urn:" extension.
inline const wire::Bytes kQuery = hex(
    "319dc9c799ced719ff15bf7056791e00 80 03 00 0f000000"
    "0080 696e7465726f70 00 75726e3a00");

// Same capture, frame 15: QueryHit with urn:sha1 + GGEP, GTKG trailer, ServentID.
inline const wire::Bytes kQueryHit = hex(
    "319dc9c799ced719ff15bf7056791e00 81 06 00 b1000000"
    "01 ce18 7f000001 10000000"
    "02000000 20c50100 696e7465726f705f746573745f66696c652e747874 00"
    "75726e3a736861313a4444594e574d454b4d3444584c465259564632464a514a57564d4d34444144421cc302545458ddc5dcfd2802"
    "aa5261204390698850e88008b1eb08aa0cbd824354443f0d5b66 00"
    "47544b47 02 2c21 c30547544b475650010102030065e3bd800000000005000303544c534082424840"
    "d912310278b4f0d4fb0bf49b1cfc42b4");

// 08_push_giv_callback_download.pcap, frame 17: Push for ServentID d912..., file 1,
// to 127.0.0.10:6399.
inline const wire::Bytes kPush = hex(
    "c3d392f20fdadd38ff536f8f606c0500 40 01 00 1a000000"
    "d912310278b4f0d4fb0bf49b1cfc42b4 01000000 7f00000a ff18");

// Same capture, frame 20: gtk-gnutella's GIV line.
// 09_probe_as_UP_..., frames 9 and 11: gtk-gnutella's QRP RESET (16,384
// slots, infinity 2) and its one-message PATCH (4-bit entries, zlib), the
// table of a node sharing "hello gnutella.txt" and "interop_test_file.txt".
inline const wire::Bytes kQrpReset = hex("000040000002");
inline const wire::Bytes kQrpPatch = hex(
    "010101010478daedd5411500400405400df46f29820c0e0e76671ae0fd2f0200569415c0c7c94dab54b33827c8e86d691e4403"
    "6e779488f2ca4bf0c401ed30d4194107db");

// 09_probe_as_UP_..., frame 11 (behind the PATCH): gtk-gnutella's
// Messages-Supported (27 entries) and Features-Supported (6) vendor messages,
// payloads after the 23-byte header; frame 17: its HSEP message (one hop: 1
// node, 2 files, 113 KiB).
inline const wire::Bytes kMessagesSupported = hex(
    "00000000000000001b0042454152040001004245415207000100424541520b000100424541520c00010047544b4707000100"
    "47544b470700020047544b470900010047544b470a00010047544b471500010047544b471600010047544b47170001004754"
    "4b47180001004c494d45050001004c494d450b0002004c494d450b0003004c494d450c0001004c494d450c0002004c494d45"
    "0c0003004c494d450d0001004c494d45150001004c494d45150002004c494d45160001004c494d45160002004c494d451700"
    "01004c494d45170002004c494d45180001004c494d4518000200");
inline const wire::Bytes kFeaturesSupported =
    hex("000000000a000000060048534550010057484154010051525031010046324654ffff544350490100544c53210100");
inline const wire::Bytes kHsep = hex("010000000000000002000000000000007100000000000000");

inline constexpr std::string_view kGiv = "GIV 1:d912310278b4f0d4fb0bf49b1cfc42b4/file\n\n";

// 01_..., frame 4: our probe's CONNECT; frame 6: gtk-gnutella's 200 answer.
inline constexpr std::string_view kConnect06 =
    "GNUTELLA CONNECT/0.6\r\nUser-Agent: InteropProbe/0.1\r\nX-Ultrapeer: False\r\n"
    "Listen-IP: 127.0.0.4:6399\r\nRemote-IP: 127.0.0.1\r\nX-Query-Routing: 0.1\r\n\r\n";
inline constexpr std::string_view kGtkgOk06 =
    "GNUTELLA/0.6 200 OK\r\n"
    "User-Agent: gtk-gnutella/1.2.3 (2024-03-03; Topless; Linux x86_64)\r\n"
    "Pong-Caching: 0.1\r\nBye-Packet: 0.1\r\nGGEP: 0.5\r\n"
    "GUID: d912310278b4f0d4fb0bf49b1cfc42b4\r\nVendor-Message: 0.2\r\n"
    "Remote-IP: 127.0.0.4\r\nX-Ultrapeer: True\r\nX-Requeries: False\r\n"
    "Accept-Encoding: deflate\r\nX-Ultrapeer-Needed: True\r\nX-Query-Routing: 0.1\r\n"
    "X-Ultrapeer-Query-Routing: 0.1\r\nX-Degree: 46\r\nX-Max-TTL: 4\r\n"
    "X-Dynamic-Querying: 0.1\r\nX-Ext-Probes: 0.1\r\n"
    "X-Live-Since: Sat, 01 Jun 2024 12:00:05 +0000\r\n"
    "X-Features: tls/1.0, browse/1.0, sflag/0.1, HSEP/0.2\r\n\r\n";
// 14_minimal_..., frame 6: gtk-gnutella refusing a node without X-Ultrapeer.
inline constexpr std::string_view kGtkgRefused06 =
    "GNUTELLA/0.6 403 Normal nodes refused\r\n"
    "User-Agent: gtk-gnutella/1.2.3 (2024-03-03; Topless; Linux x86_64)\r\n"
    "Remote-IP: 127.0.0.90\r\nX-Live-Since: Sat, 01 Jun 2024 12:00:03 +0000\r\n\r\n";
inline constexpr std::string_view kFinal06 = "GNUTELLA/0.6 200 OK\r\nX-Ultrapeer: False\r\n\r\n";

inline wire::ByteView payload_of(const wire::Bytes& descriptor) {
  return wire::ByteView(descriptor).subspan(23);
}

}  // namespace sv::test::vec

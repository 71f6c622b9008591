# One libtorrent session (Debian's python3-libtorrent, run by /usr/bin/python3)
# for the torrent interop tests and bench/torrent, on loopback only (uTP,
# DHT, LSD, UPnP and NAT-PMP off):
#   get TORRENT SAVE_DIR HOST:PORT   connects to that peer ("-": only the
#                                    torrent's trackers), exits 0 once it seeds;
#                                    TORRENT may be a magnet link (the metadata
#                                    then comes from peers, BEP 9)
#   seed TORRENT SAVE_DIR PORT       prints "seeding PORT" and serves until killed
import libtorrent as lt, sys, time
mode, tor, save = sys.argv[1], sys.argv[2], sys.argv[3]
port = int(sys.argv[4]) if mode == "seed" else 0
s = lt.session({'listen_interfaces': '127.0.0.1:%d' % port, 'enable_dht': False, 'enable_lsd': False,
                'enable_upnp': False, 'enable_natpmp': False, 'enable_outgoing_utp': False,
                'enable_incoming_utp': False, 'allow_multiple_connections_per_ip': True})
if tor.startswith("magnet:"):
    params = lt.parse_magnet_uri(tor)
    params.save_path = save
    h = s.add_torrent(params)
else:
    h = s.add_torrent({'ti': lt.torrent_info(tor), 'save_path': save})
if mode == "seed":
    while not h.status().is_seeding: time.sleep(0.05)
    print("seeding", s.listen_port(), flush=True)
    while True: time.sleep(1)
if sys.argv[4] != "-":
    host, p = sys.argv[4].split(':')
    h.connect_peer((host, int(p)))
end = time.time() + 600
while time.time() < end and not h.status().is_seeding: time.sleep(0.02)
print("libtorrent", h.status().state, flush=True)
sys.exit(0 if h.status().is_seeding else 1)

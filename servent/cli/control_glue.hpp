// What a running node does with control-socket requests (see
// servent/control/control_core.hpp and README "Control socket"): it routes
// them to the cores, streams search results to whoever asked, and tells every
// control client when a download ends.
#pragma once

#include <map>
#include <set>

#include "servent/cli/dht_glue.hpp"
#include "servent/control/control_core.hpp"
#include "servent/download/download_core.hpp"
#include "servent/gnutella/gnutella_core.hpp"
#include "servent/napster/napster_client.hpp"
#include "servent/napster/napster_server.hpp"
#include "servent/torrent/torrent_core.hpp"
#include "servent/upload/upload_core.hpp"
#include "servent/uv/driver.hpp"

namespace sv::cli {

class ControlGlue {
 public:
  ControlGlue(ControlCore& control, GnutellaCore& gnutella, UploadCore& upload, DownloadCore& downloads,
              share::Library& library, Driver& driver, std::string default_out);
  // The Napster networks this node is on, when it is: searches go there too,
  // results come back with "network": "napster", downloads of them go through
  // the same download store.
  void set_napster(NapsterClient* client, const NapsterServer* server) {
    napster_ = client;
    napster_server_ = server;
  }
  // The BitTorrent core (servent run --torrent-dir): "torrents" lists its
  // torrents and their peers; "stats" gains its counters.
  void set_torrents(const TorrentCore* torrents) { torrents_ = torrents; }
  // The DHT node (servent run --dht): "dht" shows its place in the overlay,
  // "dht-put", "dht-get" and "dht-lookup" go through it.
  void set_dht(DhtOps* dht) { dht_ = dht; }
  void on_request(const ControlRequest& r);
  // Hashes files on the driver's thread pool (one job per file), applies the
  // results on the loop, saves the cache when the batch is done, then calls
  // `done` with how many there were. Progress shows in `stats` (library:
  // hashing_done / hashing_total).
  void hash_in_pool(std::vector<share::HashJob> jobs, std::function<void(std::size_t)> done = {});
  void on_hit(const event::Hit& h);
  void on_napster_result(const napster_event::Result& r);
  void on_napster_browse(const NapsterEvent& e);
  void on_download_event(const DownloadEvent& e);
  // Results kept per search, at most this many.
  static constexpr std::size_t kMaxResults = 1000;

 private:
  void search(const ControlRequest& r);
  void download(const ControlRequest& r);
  nlohmann::json stats() const;
  struct SearchState {
    std::set<ConnId> subscribers;
    std::vector<nlohmann::json> results;
    std::optional<std::uint64_t> feeds_download;  // a urn search finding sources for a download
    std::optional<share::Sha1> sha1;
    // Kept (with its results) until then even with nobody subscribed: an
    // identical search before it shows these instead of a query the
    // ultrapeers would drop (GnutellaConfig::requery_threshold).
    Instant keep_until;
  };
  static constexpr std::size_t kMaxKeptSearches = 256;  // idle ones, the oldest go first
  void prune_searches();
  ControlCore& control_;
  GnutellaCore& gnutella_;
  UploadCore& upload_;
  DownloadCore& downloads_;
  share::Library& library_;
  Driver& driver_;
  std::string default_out_;
  std::map<std::string, SearchState> searches_;  // by GUID hex
  NapsterClient* napster_ = nullptr;
  const NapsterServer* napster_server_ = nullptr;
  const TorrentCore* torrents_ = nullptr;
  DhtOps* dht_ = nullptr;
  void dht_request(const ControlRequest& r);
  std::map<std::uint64_t, std::string> napster_searches_;  // Napster search id -> our search id
  std::map<std::string, std::set<ConnId>> browses_;        // nick -> who asked
  std::uint64_t hashing_done_ = 0, hashing_total_ = 0;
};

// The JSON object `servent search --json` prints for a hit (also streamed as
// "result" events on the control socket).
nlohmann::ordered_json hit_json(const event::Hit& h);
// The same for a Napster result ("network": "napster", "nick", "path": the
// name as shared, "name": its last component).
nlohmann::ordered_json napster_hit_json(const wire::napster::SearchResult& r);
// One hit as `servent search` prints it (text or --json).
void print_hit(const nlohmann::ordered_json& hit, bool as_json);

}  // namespace sv::cli

#include "discovery/ranking.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace chatd::discovery {

namespace {

double radians(double deg) { return deg * std::numbers::pi / 180.0; }

std::optional<coordinates> region_coordinates_of(const std::string& region, const discovery_config& cfg) {
  if (region.empty()) return std::nullopt;
  auto it = cfg.regions.find(region);
  if (it == cfg.regions.end()) return std::nullopt;
  return coordinates{it->second.lat, it->second.lon};
}

// Lower load first, then id, so that equal inputs always give the same order.
bool by_load(const ranked_server& a, const ranked_server& b) {
  if (a.server.load != b.server.load) return a.server.load < b.server.load;
  return a.server.id < b.server.id;
}

}  // namespace

double haversine_km(coordinates a, coordinates b) {
  double dlat = radians(b.lat - a.lat);
  double dlon = radians(b.lon - a.lon);
  double h = std::sin(dlat / 2) * std::sin(dlat / 2) +
             std::cos(radians(a.lat)) * std::cos(radians(b.lat)) * std::sin(dlon / 2) * std::sin(dlon / 2);
  // Rounding can push h a hair above 1 for antipodal points; asin would be NaN.
  h = std::clamp(h, 0.0, 1.0);
  return 2 * earth_radius_km * std::asin(std::sqrt(h));
}

std::optional<coordinates> client_origin(const client_location& c, const discovery_config& cfg) {
  if (c.lat && c.lon) return coordinates{*c.lat, *c.lon};
  if (!c.region.empty()) return region_coordinates_of(c.region, cfg);
  return region_coordinates_of(cfg.default_region, cfg);
}

std::optional<coordinates> server_coordinates(const server_info& s, const discovery_config& cfg) {
  if (s.lat && s.lon) return coordinates{*s.lat, *s.lon};
  return region_coordinates_of(s.region, cfg);
}

std::vector<ranked_server> rank(const std::vector<server_info>& servers, const client_location& client,
                                const discovery_config& cfg) {
  auto origin = client_origin(client, cfg);
  std::vector<ranked_server> known, unknown;
  for (const auto& s : servers) {
    std::optional<double> d;
    if (origin) {
      if (auto sc = server_coordinates(s, cfg)) d = haversine_km(*origin, *sc);
    }
    (d ? known : unknown).push_back(ranked_server{s, d});
  }

  // Known distances: sort by distance, then cut the line into groups, each
  // starting at the nearest server not yet grouped and taking every server
  // within near_tie_km of it. All members of a group are then within
  // near_tie_km of each other, and the grouping is deterministic (a plain
  // "closer than 50 km" comparator would not be a strict weak order).
  std::sort(known.begin(), known.end(), [](const ranked_server& a, const ranked_server& b) {
    if (*a.distance_km != *b.distance_km) return *a.distance_km < *b.distance_km;
    return by_load(a, b);
  });
  for (std::size_t start = 0; start < known.size();) {
    std::size_t end = start + 1;
    while (end < known.size() && *known[end].distance_km - *known[start].distance_km <= near_tie_km) ++end;
    std::sort(known.begin() + static_cast<std::ptrdiff_t>(start), known.begin() + static_cast<std::ptrdiff_t>(end),
              by_load);
    start = end;
  }

  // Unknown distances come last. Without an origin the client's region is
  // the only hint left: servers of that region (the one asked for, else the
  // default one) first.
  std::string home;
  if (!origin) home = client.region.empty() ? cfg.default_region : client.region;
  std::sort(unknown.begin(), unknown.end(), [&home](const ranked_server& a, const ranked_server& b) {
    bool ah = !home.empty() && a.server.region == home;
    bool bh = !home.empty() && b.server.region == home;
    if (ah != bh) return ah;
    return by_load(a, b);
  });

  known.insert(known.end(), std::make_move_iterator(unknown.begin()), std::make_move_iterator(unknown.end()));
  return known;
}

}  // namespace chatd::discovery

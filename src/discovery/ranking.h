// Choosing the best chat servers for a client: nearest first, load breaking
// near-ties. Pure functions of their inputs (README.md states the rules).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "discovery/registry.h"

namespace chatd::discovery {

inline constexpr double earth_radius_km = 6371.0088;  // mean radius (IUGG)
// Servers whose distances differ by at most this much count as equally near,
// and the less loaded one wins.
inline constexpr double near_tie_km = 50.0;

struct client_location {
  std::optional<double> lat, lon;  // both or neither (the service validates)
  std::string region;              // empty: none given
};

struct ranked_server {
  server_info server;
  std::optional<double> distance_km;  // nullopt: either side has no coordinates
};

struct coordinates {
  double lat = 0;
  double lon = 0;
};

// Great-circle distance by the haversine formula, in km.
double haversine_km(coordinates a, coordinates b);

// Where distances are measured from: the client's lat/lon, else its region's
// entry in cfg.regions, else (no hint at all) the default region's entry.
std::optional<coordinates> client_origin(const client_location& c, const discovery_config& cfg);
// The server's own lat/lon, else its region's entry in cfg.regions.
std::optional<coordinates> server_coordinates(const server_info& s, const discovery_config& cfg);

// Best first; see README.md for the exact order.
std::vector<ranked_server> rank(const std::vector<server_info>& servers, const client_location& client,
                                const discovery_config& cfg);

}  // namespace chatd::discovery

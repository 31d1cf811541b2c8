#include "discovery/ranking.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace chatd::discovery {
namespace {

constexpr coordinates frankfurt{50.11, 8.68};
constexpr coordinates paris{48.86, 2.35};
constexpr coordinates mainz{50.00, 8.27};    // ~31 km from Frankfurt
constexpr coordinates cologne{50.94, 6.96};  // ~150 km from Frankfurt
constexpr coordinates london{51.51, -0.13};  // ~640 km
constexpr coordinates madrid{40.42, -3.70};  // ~1450 km
constexpr coordinates new_york{40.71, -74.01};

server_info at(std::string id, coordinates c, double load = 0, std::string region = "local") {
  server_info s;
  s.id = std::move(id);
  s.url = "ws://" + s.id + ".example:9000/v1/ws";
  s.region = std::move(region);
  s.lat = c.lat;
  s.lon = c.lon;
  s.load = load;
  return s;
}

server_info in_region(std::string id, std::string region, double load = 0) {
  server_info s;
  s.id = std::move(id);
  s.url = "ws://" + s.id + ".example:9000/v1/ws";
  s.region = std::move(region);
  s.load = load;
  return s;
}

client_location client_at(coordinates c) { return client_location{c.lat, c.lon, ""}; }
client_location client_in(std::string region) { return client_location{std::nullopt, std::nullopt, std::move(region)}; }

std::vector<std::string> ids(const std::vector<ranked_server>& r) {
  std::vector<std::string> out;
  for (const auto& x : r) out.push_back(x.server.id);
  return out;
}

discovery_config no_regions() {
  discovery_config c;
  c.default_region = "local";
  return c;
}

discovery_config with_regions() {
  discovery_config c;
  c.default_region = "eu-central";
  c.regions["eu-central"] = region_coordinates{frankfurt.lat, frankfurt.lon};
  c.regions["us-east"] = region_coordinates{new_york.lat, new_york.lon};
  return c;
}

using strings = std::vector<std::string>;

TEST(Haversine, FrankfurtToParis) {
  EXPECT_NEAR(haversine_km(frankfurt, paris), 479.0, 2.0);
  EXPECT_NEAR(haversine_km(paris, frankfurt), haversine_km(frankfurt, paris), 1e-9);
}

TEST(Haversine, SamePointIsZero) { EXPECT_NEAR(haversine_km(frankfurt, frankfurt), 0.0, 1e-9); }

TEST(Haversine, AntipodesAreHalfTheCircumference) {
  double half = 3.14159265358979323846 * earth_radius_km;
  EXPECT_NEAR(haversine_km({0, 0}, {0, 180}), half, 1e-6);
  EXPECT_NEAR(haversine_km({90, 0}, {-90, 0}), half, 1e-6);
  EXPECT_NEAR(haversine_km({-33.9, 18.4}, {33.9, -161.6}), half, 1e-6);
}

TEST(Haversine, AcrossTheDateLine) {
  // 1 degree of longitude at the equator, whichever way round.
  EXPECT_NEAR(haversine_km({0, 179.5}, {0, -179.5}), haversine_km({0, 0}, {0, 1}), 1e-6);
}

TEST(Rank, OrdersByDistance) {
  auto r = rank({at("madrid", madrid), at("london", london), at("frankfurt", frankfurt)}, client_at(frankfurt),
                no_regions());
  EXPECT_EQ(ids(r), (strings{"frankfurt", "london", "madrid"}));
  ASSERT_TRUE(r[0].distance_km);
  EXPECT_NEAR(*r[0].distance_km, 0, 1e-6);
  EXPECT_NEAR(*r[1].distance_km, haversine_km(frankfurt, london), 1e-6);
}

TEST(Rank, NearTieBrokenByLoad) {
  // Mainz is 31 km further than Frankfurt: a near-tie, so the idle one wins.
  auto r = rank({at("frankfurt", frankfurt, 0.9), at("mainz", mainz, 0.1)}, client_at(frankfurt), no_regions());
  EXPECT_EQ(ids(r), (strings{"mainz", "frankfurt"}));
  // Cologne is 150 km further: distance wins over load.
  r = rank({at("cologne", cologne, 0.0), at("frankfurt", frankfurt, 0.9)}, client_at(frankfurt), no_regions());
  EXPECT_EQ(ids(r), (strings{"frankfurt", "cologne"}));
}

TEST(Rank, NearTieGroupIsAnchoredAtTheNearest) {
  // Distances 0, ~31 (Mainz) and ~150 (Cologne): Mainz ties with Frankfurt,
  // Cologne ties with neither even though it is idle.
  auto r = rank({at("cologne", cologne, 0.0), at("frankfurt", frankfurt, 0.5), at("mainz", mainz, 0.2)},
                client_at(frankfurt), no_regions());
  EXPECT_EQ(ids(r), (strings{"mainz", "frankfurt", "cologne"}));
}

TEST(Rank, EqualLoadBrokenById) {
  auto r =
      rank({at("b", frankfurt, 0.5), at("a", mainz, 0.5), at("c", frankfurt, 0.5)}, client_at(frankfurt), no_regions());
  EXPECT_EQ(ids(r), (strings{"a", "b", "c"}));
}

TEST(Rank, ResultDoesNotDependOnInputOrder) {
  std::vector<server_info> s{at("a", frankfurt, 0.3),        at("b", mainz, 0.3),
                             at("c", cologne, 0.1),          at("d", paris, 0.0),
                             in_region("e", "nowhere", 0.2), in_region("f", "nowhere", 0.1)};
  auto expected = ids(rank(s, client_at(frankfurt), no_regions()));
  std::sort(s.begin(), s.end(), [](const server_info& x, const server_info& y) { return x.id > y.id; });
  EXPECT_EQ(ids(rank(s, client_at(frankfurt), no_regions())), expected);
  std::rotate(s.begin(), s.begin() + 2, s.end());
  EXPECT_EQ(ids(rank(s, client_at(frankfurt), no_regions())), expected);
}

TEST(Rank, UnknownDistancesLastByLoad) {
  auto r = rank({in_region("x", "nowhere", 0.5), at("far", new_york, 0.9), in_region("y", "nowhere", 0.1)},
                client_at(frankfurt), no_regions());
  EXPECT_EQ(ids(r), (strings{"far", "y", "x"}));
  EXPECT_TRUE(r[0].distance_km);
  EXPECT_FALSE(r[1].distance_km);
  EXPECT_FALSE(r[2].distance_km);
}

TEST(Rank, NoClientLocationMeansNullDistances) {
  // No hint and the default region has no coordinates.
  auto r = rank({at("b", frankfurt, 0.5), at("a", paris, 0.9)}, client_location{}, no_regions());
  ASSERT_EQ(r.size(), 2u);
  for (const auto& x : r) EXPECT_FALSE(x.distance_km);
  EXPECT_EQ(ids(r), (strings{"b", "a"}));
}

TEST(Rank, RegionHintMeasuresFromRegionCoordinates) {
  auto r = rank({at("fra", frankfurt), at("nyc", new_york)}, client_in("us-east"), with_regions());
  EXPECT_EQ(ids(r), (strings{"nyc", "fra"}));
  ASSERT_TRUE(r[0].distance_km && r[1].distance_km);
  EXPECT_NEAR(*r[0].distance_km, 0, 1e-6);
  EXPECT_NEAR(*r[1].distance_km, haversine_km(new_york, frankfurt), 1e-6);
}

TEST(Rank, ClientCoordinatesWinOverRegion) {
  client_location c{paris.lat, paris.lon, "us-east"};
  auto r = rank({at("fra", frankfurt), at("nyc", new_york)}, c, with_regions());
  EXPECT_EQ(ids(r), (strings{"fra", "nyc"}));
  EXPECT_NEAR(*r[0].distance_km, haversine_km(paris, frankfurt), 1e-6);
}

TEST(Rank, DefaultRegionWhenNoHint) {
  // default_region is eu-central (Frankfurt).
  auto r = rank({at("nyc", new_york), at("par", paris)}, client_location{}, with_regions());
  EXPECT_EQ(ids(r), (strings{"par", "nyc"}));
  ASSERT_TRUE(r[0].distance_km);
  EXPECT_NEAR(*r[0].distance_km, 479.0, 2.0);
}

TEST(Rank, ServerCoordinatesFromRegionTable) {
  // Neither server reports lat/lon: their regions' entries are used.
  auto r = rank({in_region("us", "us-east"), in_region("eu", "eu-central")}, client_at(paris), with_regions());
  EXPECT_EQ(ids(r), (strings{"eu", "us"}));
  ASSERT_TRUE(r[0].distance_km && r[1].distance_km);
  EXPECT_NEAR(*r[0].distance_km, 479.0, 2.0);
  EXPECT_NEAR(*r[1].distance_km, haversine_km(paris, new_york), 1e-6);
}

TEST(Rank, ServerOwnCoordinatesWinOverRegionTable) {
  // Says eu-central but sits in Madrid.
  auto r = rank({at("odd", madrid, 0, "eu-central")}, client_at(frankfurt), with_regions());
  ASSERT_TRUE(r[0].distance_km);
  EXPECT_NEAR(*r[0].distance_km, haversine_km(frankfurt, madrid), 1e-6);
}

TEST(Rank, RegionWithoutCoordinatesPrefersThatRegion) {
  auto cfg = with_regions();
  auto r = rank({in_region("a", "eu-central", 0.0), in_region("m2", "mars", 0.7), in_region("m1", "mars", 0.2),
                 in_region("z", "venus", 0.0)},
                client_in("mars"), cfg);
  EXPECT_EQ(ids(r), (strings{"m1", "m2", "a", "z"}));
  for (const auto& x : r) EXPECT_FALSE(x.distance_km);
}

TEST(Rank, DefaultRegionWithoutCoordinatesPrefersThatRegion) {
  discovery_config cfg;
  cfg.default_region = "local";
  auto r = rank({in_region("other", "elsewhere", 0.0), in_region("home", "local", 0.9)}, client_location{}, cfg);
  EXPECT_EQ(ids(r), (strings{"home", "other"}));
}

TEST(Rank, EmptyInputGivesEmptyOutput) { EXPECT_TRUE(rank({}, client_at(frankfurt), with_regions()).empty()); }

TEST(ClientOrigin, Rules) {
  auto cfg = with_regions();
  auto o = client_origin(client_at(paris), cfg);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->lat, paris.lat);
  o = client_origin(client_in("us-east"), cfg);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->lon, new_york.lon);
  EXPECT_FALSE(client_origin(client_in("mars"), cfg));  // a region without an entry does not fall back
  o = client_origin(client_location{}, cfg);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->lat, frankfurt.lat);
  EXPECT_FALSE(client_origin(client_location{}, no_regions()));
}

}  // namespace
}  // namespace chatd::discovery

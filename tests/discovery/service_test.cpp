#include "discovery/service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "auth/hmac.h"
#include "common/json.h"
#include "discovery/memory_registry.h"
#include "discovery/wire.h"
#include "rpc/internal.h"

namespace chatd::discovery {
namespace {

using query_list = std::vector<std::pair<std::string, std::string>>;

net::http_request discovery_request(query_list q, std::string remote = "203.0.113.7") {
  net::http_request r;
  r.method = "GET";
  r.path = "/v1/discovery";
  r.target = "/v1/discovery";
  r.query = std::move(q);
  r.remote_addr = std::move(remote);
  return r;
}

json::object body_of(const net::http_response& r) {
  auto o = parse_json_object(r.body);
  EXPECT_TRUE(o.ok()) << r.body;
  return o ? std::move(o.value()) : json::object{};
}

void expect_bad_request(const net::http_response& r) {
  EXPECT_EQ(r.status, 400) << r.body;
  auto o = body_of(r);
  ASSERT_TRUE(o.contains("error")) << r.body;
  const auto& e = o["error"].as_object();
  EXPECT_EQ(e.at("code").as_string(), "bad_request");
  EXPECT_TRUE(e.at("message").is_string());
  EXPECT_FALSE(e.at("message").as_string().empty());
}

server_info server(std::string id, std::string region, std::optional<double> lat, std::optional<double> lon,
                   double load) {
  return server_info{id, "ws://" + id + ":9000/v1/ws", std::move(region), lat, lon, load};
}

class DiscoveryService : public ::testing::Test {
 protected:
  DiscoveryService() {
    cfg_.default_region = "local";
    cfg_.regions["eu-central"] = {50.11, 8.68};
    cfg_.regions["us-east"] = {40.71, -74.01};
  }
  discovery_config cfg_;
  memory_registry reg_;
};

TEST_F(DiscoveryService, RejectsLatOutOfRange) {
  service svc(reg_, cfg_);
  expect_bad_request(svc.handle_discovery(discovery_request({{"lat", "91"}, {"lon", "0"}})));
  expect_bad_request(svc.handle_discovery(discovery_request({{"lat", "-90.5"}, {"lon", "0"}})));
  expect_bad_request(svc.handle_discovery(discovery_request({{"lat", "0"}, {"lon", "180.01"}})));
  expect_bad_request(svc.handle_discovery(discovery_request({{"lat", "0"}, {"lon", "-181"}})));
}

TEST_F(DiscoveryService, RejectsMalformedNumbers) {
  service svc(reg_, cfg_);
  for (std::string bad : {"abc", "1e1", "nan", "inf", "-inf", "1.5x", " 1", "0x10", "+1", "--1"}) {
    SCOPED_TRACE(bad);
    expect_bad_request(svc.handle_discovery(discovery_request({{"lat", bad}, {"lon", "0"}})));
    expect_bad_request(svc.handle_discovery(discovery_request({{"lat", "0"}, {"lon", bad}})));
  }
}

TEST_F(DiscoveryService, RejectsLatWithoutLon) {
  service svc(reg_, cfg_);
  expect_bad_request(svc.handle_discovery(discovery_request({{"lat", "50"}})));
  expect_bad_request(svc.handle_discovery(discovery_request({{"lon", "8"}})));
  expect_bad_request(svc.handle_discovery(discovery_request({{"lat", "50"}, {"lon", ""}})));
}

TEST_F(DiscoveryService, RejectsBadRegion) {
  service svc(reg_, cfg_);
  for (std::string bad : std::vector<std::string>{"EU", "eu central", "eu.central", std::string(33, 'a'), "\xc3\xa9"}) {
    SCOPED_TRACE(bad);
    expect_bad_request(svc.handle_discovery(discovery_request({{"region", bad}})));
  }
}

TEST_F(DiscoveryService, AcceptsBoundaryValues) {
  service svc(reg_, cfg_);
  for (auto q : std::vector<query_list>{{{"lat", "90"}, {"lon", "180"}},
                                        {{"lat", "-90"}, {"lon", "-180"}},
                                        {{"lat", "-0.000001"}, {"lon", "12"}},
                                        {{"region", std::string(32, 'z')}},
                                        {{"region", "a_b-9"}},
                                        {{"lat", ""}, {"lon", ""}, {"region", ""}},
                                        {}}) {
    auto r = svc.handle_discovery(discovery_request(q));
    EXPECT_EQ(r.status, 200) << r.body;
  }
}

TEST_F(DiscoveryService, AnswersRankedServersInTheContractShape) {
  ASSERT_TRUE(reg_.heartbeat(server("fra", "eu-central", std::nullopt, std::nullopt, 0.5), std::chrono::seconds(10)));
  ASSERT_TRUE(reg_.heartbeat(server("nyc", "us-east", 40.71, -74.01, 0.25), std::chrono::seconds(10)));
  ASSERT_TRUE(reg_.heartbeat(server("moon", "moon", std::nullopt, std::nullopt, 0), std::chrono::seconds(10)));
  service svc(reg_, cfg_);
  auto r = svc.handle_discovery(discovery_request({{"lat", "48.86"}, {"lon", "2.35"}}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  auto o = body_of(r);
  ASSERT_TRUE(o.contains("servers"));
  const auto& a = o["servers"].as_array();
  ASSERT_EQ(a.size(), 3u);
  const auto& first = a[0].as_object();
  EXPECT_EQ(first.size(), 5u);
  EXPECT_EQ(first.at("id").as_string(), "fra");
  EXPECT_EQ(first.at("url").as_string(), "ws://fra:9000/v1/ws");
  EXPECT_EQ(first.at("region").as_string(), "eu-central");
  EXPECT_NEAR(first.at("distance_km").to_number<double>(), 479.0, 2.0);
  EXPECT_EQ(first.at("load").to_number<double>(), 0.5);
  EXPECT_EQ(a[1].as_object().at("id").as_string(), "nyc");
  EXPECT_EQ(a[2].as_object().at("id").as_string(), "moon");
  EXPECT_TRUE(a[2].as_object().at("distance_km").is_null());
}

TEST_F(DiscoveryService, RegionHint) {
  ASSERT_TRUE(reg_.heartbeat(server("fra", "eu-central", std::nullopt, std::nullopt, 0), std::chrono::seconds(10)));
  ASSERT_TRUE(reg_.heartbeat(server("nyc", "us-east", std::nullopt, std::nullopt, 0.9), std::chrono::seconds(10)));
  service svc(reg_, cfg_);
  auto o = body_of(svc.handle_discovery(discovery_request({{"region", "us-east"}})));
  const auto& a = o["servers"].as_array();
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].as_object().at("id").as_string(), "nyc");
  EXPECT_EQ(a[0].as_object().at("distance_km").to_number<double>(), 0.0);
}

TEST_F(DiscoveryService, UnknownLocationGivesNullDistances) {
  // default_region "local" has no coordinates.
  ASSERT_TRUE(reg_.heartbeat(server("fra", "eu-central", 50.11, 8.68, 0), std::chrono::seconds(10)));
  service svc(reg_, cfg_);
  auto o = body_of(svc.handle_discovery(discovery_request({})));
  const auto& a = o["servers"].as_array();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_TRUE(a[0].as_object().at("distance_km").is_null());
}

TEST_F(DiscoveryService, EmptyRegistryGivesEmptyList) {
  service svc(reg_, cfg_);
  auto r = svc.handle_discovery(discovery_request({}));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"servers":[]})");
}

TEST_F(DiscoveryService, IpLocatorUsedOnlyWithoutHint) {
  ASSERT_TRUE(reg_.heartbeat(server("fra", "eu-central", std::nullopt, std::nullopt, 0), std::chrono::seconds(10)));
  ASSERT_TRUE(reg_.heartbeat(server("nyc", "us-east", std::nullopt, std::nullopt, 0), std::chrono::seconds(10)));
  std::atomic<int> calls{0};
  std::string seen_ip;
  service svc(reg_, cfg_, [&](std::string_view ip) -> std::optional<client_location> {
    ++calls;
    seen_ip = std::string(ip);
    return client_location{std::nullopt, std::nullopt, "us-east"};
  });
  auto o = body_of(svc.handle_discovery(discovery_request({}, "198.51.100.1")));
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(seen_ip, "198.51.100.1");
  EXPECT_EQ(o["servers"].as_array()[0].as_object().at("id").as_string(), "nyc");
  o = body_of(svc.handle_discovery(discovery_request({{"region", "eu-central"}})));
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(o["servers"].as_array()[0].as_object().at("id").as_string(), "fra");
}

class failing_registry final : public registry {
 public:
  status heartbeat(const server_info&, std::chrono::milliseconds) override {
    return make_error(errc::unavailable, "down");
  }
  status remove(const std::string&) override { return make_error(errc::unavailable, "down"); }
  result<std::vector<server_info>> healthy() override { return make_error(errc::unavailable, "down"); }
};

TEST_F(DiscoveryService, RegistryFailureIsUnavailable) {
  failing_registry bad;
  service svc(bad, cfg_);
  auto r = svc.handle_discovery(discovery_request({}));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(body_of(r)["error"].as_object().at("code").as_string(), "unavailable");
}

// --- internal endpoints, called through the router without a network ---

class InternalRoutes : public DiscoveryService {
 protected:
  InternalRoutes() : svc_(reg_, cfg_) { svc_.add_internal_routes(routes_, secret_); }

  net::http_response call(std::string method, std::string_view path, std::string body, net::header_list headers) {
    net::http_request req;
    req.method = std::move(method);
    req.path = std::string(path);
    req.target = req.path;
    req.body = std::move(body);
    req.headers = std::move(headers);
    auto m = routes_.find(req, false);
    EXPECT_NE(m.handler, nullptr) << path;
    if (!m.handler) return {};
    return (*m.handler)(req);
  }
  net::http_response signed_call(std::string method, std::string_view path, std::string body) {
    auto h = rpc::signed_headers(secret_, method, path, body);
    return call(std::move(method), path, std::move(body), std::move(h));
  }

  std::string secret_ = "s3cret-for-tests";
  service svc_;
  net::router routes_;
};

TEST_F(InternalRoutes, HeartbeatRegisters) {
  auto body = wire::heartbeat_body(server("cs-1", "eu-central", 50.1, 8.6, 0.25), std::chrono::seconds(5));
  auto r = signed_call("POST", wire::heartbeat_path, body);
  EXPECT_EQ(r.status, 204) << r.body;
  auto h = reg_.healthy();
  ASSERT_TRUE(h);
  ASSERT_EQ(h->size(), 1u);
  EXPECT_EQ((*h)[0], server("cs-1", "eu-central", 50.1, 8.6, 0.25));
}

TEST_F(InternalRoutes, SignatureRequired) {
  auto body = wire::heartbeat_body(server("cs-1", "local", std::nullopt, std::nullopt, 0), std::chrono::seconds(5));
  const std::string path(wire::heartbeat_path);
  auto good = rpc::signed_headers(secret_, "POST", path, body);
  auto with_signature = [&](std::string sig) {
    auto h = good;
    for (auto& [k, v] : h) {
      if (k == rpc::signature_header) v = std::move(sig);
    }
    return h;
  };
  std::string sig;
  for (auto& [k, v] : good) {
    if (k == rpc::signature_header) sig = v;
  }
  std::string upper = sig;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const net::header_list& h :
       std::vector<net::header_list>{{},
                                     with_signature(""),
                                     rpc::signed_headers("other", "POST", path, body),
                                     with_signature(sig.substr(7)),
                                     with_signature(upper),
                                     with_signature(sig + "0"),
                                     rpc::signed_headers(secret_, "POST", path, body + " "),
                                     rpc::signed_headers(secret_, "PUT", path, body),
                                     {{std::string(rpc::signature_header), sig}}}) {  // no timestamp
    auto r = call("POST", wire::heartbeat_path, body, h);
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(body_of(r)["error"].as_object().at("code").as_string(), "unauthorized");
  }
  EXPECT_EQ(call("GET", wire::servers_path, "", {}).status, 401);
  EXPECT_EQ(call("POST", wire::remove_path, R"({"id":"cs-1"})", with_signature("sha256=00")).status, 401);
  EXPECT_TRUE(reg_.healthy()->empty());
}

TEST_F(InternalRoutes, HeartbeatBodyIsStrict) {
  for (std::string body : {
           std::string("not json"),
           std::string("[]"),
           std::string(R"({"id":"a","url":"ws://a/v1/ws","region":"r","load":0})"),                      // no ttl_ms
           std::string(R"({"id":"a","url":"ws://a/v1/ws","region":"r","load":0,"ttl_ms":1000,"x":1})"),  // unknown
           std::string(R"({"id":"a","url":"ws://a/v1/ws","region":"r","load":"0","ttl_ms":1000})"),
           std::string(R"({"id":"a","url":"ws://a/v1/ws","region":"r","load":0,"ttl_ms":1.5})"),
           std::string(R"({"id":"a","url":"ws://a/v1/ws","region":"r","load":2,"ttl_ms":1000})"),
           std::string(R"({"id":"a","url":"http://a/v1/ws","region":"r","load":0,"ttl_ms":1000})"),
           std::string(R"({"id":"a","url":"ws://a/v1/ws","region":"R","load":0,"ttl_ms":1000})"),
           std::string(R"({"id":"a","url":"ws://a/v1/ws","region":"r","lat":1,"load":0,"ttl_ms":1000})"),
           std::string(R"({"id":"a","url":"ws://a/v1/ws","region":"r","lat":91,"lon":0,"load":0,"ttl_ms":1000})"),
           std::string(R"({"id":"","url":"ws://a/v1/ws","region":"r","load":0,"ttl_ms":1000})"),
           std::string(R"({"id":"a","url":"ws://a/v1/ws","region":"r","load":0,"ttl_ms":0})"),
       }) {
    SCOPED_TRACE(body);
    expect_bad_request(signed_call("POST", wire::heartbeat_path, body));
  }
  EXPECT_TRUE(reg_.healthy()->empty());
  // Null coordinates are the same as none.
  auto r = signed_call("POST", wire::heartbeat_path,
                       R"({"id":"a","url":"ws://a/v1/ws","region":"r","lat":null,"lon":null,"load":1,"ttl_ms":1000})");
  EXPECT_EQ(r.status, 204) << r.body;
}

TEST_F(InternalRoutes, RemoveAndList) {
  ASSERT_TRUE(reg_.heartbeat(server("a", "local", std::nullopt, std::nullopt, 0.1), std::chrono::seconds(10)));
  ASSERT_TRUE(reg_.heartbeat(server("b", "local", 1.5, 2.5, 0.2), std::chrono::seconds(10)));
  auto r = signed_call("GET", wire::servers_path, "");
  ASSERT_EQ(r.status, 200) << r.body;
  auto list = wire::parse_servers(r.body);
  ASSERT_TRUE(list) << list.err().message;
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1], server("b", "local", 1.5, 2.5, 0.2));
  EXPECT_EQ(signed_call("POST", wire::remove_path, R"({"id":"a"})").status, 204);
  EXPECT_EQ(signed_call("POST", wire::remove_path, R"({"id":"never-there"})").status, 204);
  expect_bad_request(signed_call("POST", wire::remove_path, R"({"id":5})"));
  expect_bad_request(signed_call("POST", wire::remove_path, R"({"id":"b","extra":true})"));
  auto h = reg_.healthy();
  ASSERT_EQ(h->size(), 1u);
  EXPECT_EQ((*h)[0].id, "b");
}

TEST(InternalRoutesSetup, EmptySecretIsRefused) {
  memory_registry reg;
  service svc(reg, discovery_config{});
  net::router r;
  EXPECT_THROW(svc.add_internal_routes(r, ""), std::invalid_argument);
}

// --- wire format ---

TEST(Wire, HeartbeatRoundTrip) {
  auto s = server("cs-7", "eu-west", -33.5, 151.25, 0.75);
  auto parsed = wire::parse_heartbeat(wire::heartbeat_body(s, std::chrono::milliseconds(4321)));
  ASSERT_TRUE(parsed) << parsed.err().message;
  EXPECT_EQ(parsed->server, s);
  EXPECT_EQ(parsed->ttl.count(), 4321);
  s.lat.reset();
  s.lon.reset();
  parsed = wire::parse_heartbeat(wire::heartbeat_body(s, std::chrono::milliseconds(1)));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->server, s);
}

TEST(Wire, ServerListToleratesNewFieldsButNotWrongTypes) {
  auto ok = wire::parse_servers(
      R"({"servers":[{"id":"a","url":"ws://a/v1/ws","region":"r","lat":null,"lon":null,"load":0,"new":1}],"more":2})");
  ASSERT_TRUE(ok) << ok.err().message;
  EXPECT_EQ(ok->size(), 1u);
  EXPECT_FALSE(wire::parse_servers(R"({"servers":[{"id":"a","url":"ws://a/v1/ws","region":"r","load":"x"}]})"));
  EXPECT_FALSE(wire::parse_servers(R"({"servers":{}})"));
  EXPECT_FALSE(wire::parse_servers(R"({"servers":[1]})"));
}

// --- validation shared by every registry ---

TEST(ValidateServerInfo, Rules) {
  auto ok = server("a", "r", std::nullopt, std::nullopt, 0);
  EXPECT_TRUE(validate_heartbeat(ok, std::chrono::milliseconds(1)));
  EXPECT_FALSE(validate_heartbeat(ok, std::chrono::milliseconds(0)));
  EXPECT_FALSE(validate_heartbeat(ok, max_ttl + std::chrono::milliseconds(1)));
  auto bad = ok;
  bad.url = "wss://";
  EXPECT_FALSE(validate_server_info(bad));
  bad.url = "WSS://x:1/v1/ws";
  EXPECT_TRUE(validate_server_info(bad));
  bad = ok;
  bad.id = "a\nb";
  EXPECT_FALSE(validate_server_info(bad));
  bad = ok;
  bad.id = std::string(129, 'x');
  EXPECT_FALSE(validate_server_info(bad));
  bad = ok;
  bad.load = -0.01;
  EXPECT_FALSE(validate_server_info(bad));
  bad.load = std::numeric_limits<double>::quiet_NaN();
  EXPECT_FALSE(validate_server_info(bad));
  bad = ok;
  bad.lon = 10;
  EXPECT_FALSE(validate_server_info(bad));
  bad.lat = std::numeric_limits<double>::infinity();
  EXPECT_FALSE(validate_server_info(bad));
  bad.lat = 10;
  EXPECT_TRUE(validate_server_info(bad));
  EXPECT_EQ(validate_server_info(server("", "r", std::nullopt, std::nullopt, 0)).err().code, errc::bad_request);
}

}  // namespace
}  // namespace chatd::discovery

#include "web/static_files.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace chatd::web {
namespace {

namespace fs = std::filesystem;

// A scratch tree: <base>/site is the web root, <base>/secret.txt lies outside.
class static_site_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "chatd-web-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    base = tmpl;
    root = base / "site";
    fs::create_directories(root / "assets");
    fs::create_directories(root / "docs");
    write(root / "index.html", "<!doctype html><title>chatd</title>");
    write(root / "assets" / "index-abc123.js", "console.log(1)");
    write(root / "assets" / "index-abc123.css", "body{}");
    write(root / "favicon.svg", "<svg/>");
    write(root / "docs" / "guide.txt", "guide");
    write(root / ".env", "SECRET=1");
    write(base / "secret.txt", "top secret");
    fs::create_directories(base / "outside");
    write(base / "outside" / "x.js", "evil()");
  }
  void TearDown() override { fs::remove_all(base); }

  static void write(const fs::path& p, const std::string& body) { std::ofstream(p, std::ios::binary) << body; }

  // Like a browser navigation by default (Accept: text/html).
  net::http_response get(const static_site& s, std::string path, std::string if_none_match = "",
                         std::string accept = "text/html,application/xhtml+xml,*/*;q=0.8") {
    net::http_request req;
    req.method = "GET";
    req.path = std::move(path);
    if (!if_none_match.empty()) req.headers.emplace_back("if-none-match", if_none_match);
    if (!accept.empty()) req.headers.emplace_back("accept", accept);
    return s.serve(req);
  }

  static std::string header(const net::http_response& r, std::string_view name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return "<none>";
  }

  fs::path base, root;
};

TEST(web_relative_path, accepts_plain_paths) {
  EXPECT_EQ(*relative_path("/"), "");
  EXPECT_EQ(*relative_path("/index.html"), "index.html");
  EXPECT_EQ(*relative_path("/assets/app-1.js"), "assets/app-1.js");
  EXPECT_EQ(*relative_path("/docs/"), "docs/");
  EXPECT_EQ(*relative_path("/a..b/c.d.e"), "a..b/c.d.e");  // dots inside a name are fine
}

TEST(web_relative_path, refuses_traversal_hidden_names_and_odd_bytes) {
  for (std::string p : std::initializer_list<std::string>{
           "", "index.html", "/..", "/../etc/passwd", "/assets/../../x", "/a/./b", "/.", "/./", "/.git/config", "/.env",
           "/a//b", "//etc/passwd", "/a\\..\\b", "/..\\x", std::string("/a\0b", 4)}) {
    auto r = relative_path(p);
    ASSERT_FALSE(r) << p;
    EXPECT_EQ(r.err().code, errc::not_found) << p;
  }
}

TEST(web_content_type, by_extension_case_insensitive) {
  EXPECT_EQ(content_type_for("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("assets/app-1.JS"), "text/javascript; charset=utf-8");
  EXPECT_EQ(content_type_for("a.css"), "text/css; charset=utf-8");
  EXPECT_EQ(content_type_for("a.svg"), "image/svg+xml");
  EXPECT_EQ(content_type_for("a.woff2"), "font/woff2");
  EXPECT_EQ(content_type_for("a.map"), "application/json");
  EXPECT_EQ(content_type_for("noext"), "application/octet-stream");
  EXPECT_EQ(content_type_for(".hidden"), "application/octet-stream");
  EXPECT_EQ(content_type_for("dir.d/file"), "application/octet-stream");
}

TEST(web_api_path, api_prefixes_are_never_pages) {
  for (std::string p : {"/v1", "/v1/", "/v1/nope", "/healthz", "/healthz/x", "/readyz", "/metrics", "/metrics/a"}) {
    EXPECT_TRUE(is_api_path(p)) << p;
  }
  for (std::string p : {"/", "/v10", "/v1x/a", "/healthzz", "/chat/v1", "/index.html"}) {
    EXPECT_FALSE(is_api_path(p)) << p;
  }
}

TEST_F(static_site_test, serves_files_with_types_and_cache_headers) {
  static_site s(root.string());
  EXPECT_TRUE(s.available());

  auto r = get(s, "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "<!doctype html><title>chatd</title>");
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(header(r, "Cache-Control"), "no-cache");
  EXPECT_NE(header(r, "Content-Security-Policy"), "<none>");
  EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff");

  r = get(s, "/assets/index-abc123.js");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "console.log(1)");
  EXPECT_EQ(r.content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(header(r, "Cache-Control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(header(r, "Content-Security-Policy"), "<none>");

  r = get(s, "/favicon.svg");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "image/svg+xml");
  EXPECT_EQ(header(r, "Cache-Control"), "public, max-age=3600");
}

TEST_F(static_site_test, etag_revalidation_answers_304) {
  static_site s(root.string());
  auto r = get(s, "/assets/index-abc123.css");
  auto etag = header(r, "ETag");
  ASSERT_NE(etag, "<none>");
  auto again = get(s, "/assets/index-abc123.css", etag);
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(get(s, "/assets/index-abc123.css", "\"other\", " + etag).status, 304);
  EXPECT_EQ(get(s, "/assets/index-abc123.css", "W/" + etag).status, 304);
  EXPECT_EQ(get(s, "/assets/index-abc123.css", "\"other\"").status, 200);
  EXPECT_EQ(get(s, "/assets/index-abc123.css", etag.substr(0, etag.size() - 2) + "\"").status, 200);
}

TEST_F(static_site_test, unknown_routes_fall_back_to_index_but_missing_files_do_not) {
  static_site s(root.string());
  for (std::string p : {"/c/123", "/login", "/shop/inbox/", "/docs"}) {
    auto r = get(s, p);
    EXPECT_EQ(r.status, 200) << p;
    EXPECT_EQ(r.content_type, "text/html; charset=utf-8") << p;
    EXPECT_EQ(header(r, "Cache-Control"), "no-cache") << p;
  }
  // Without Accept: text/html (an API client, curl) an unknown path is the JSON 404; "/" is still the page.
  for (std::string accept : {"", "application/json", "*/*"}) {
    auto r = get(s, "/c/123", "", accept);
    EXPECT_EQ(r.status, 404) << accept;
    EXPECT_EQ(r.body, R"({"error":{"code":"not_found","message":"no such route"}})") << accept;
    EXPECT_EQ(get(s, "/", "", accept).status, 200) << accept;
    EXPECT_EQ(get(s, "/favicon.svg", "", accept).status, 200) << accept;
  }
  for (std::string p : {"/assets/index-old.js", "/missing.css", "/docs/nope.txt"}) {
    auto r = get(s, p);
    EXPECT_EQ(r.status, 404) << p;
    EXPECT_EQ(r.content_type, "application/json") << p;
    EXPECT_NE(r.body.find("\"code\":\"not_found\""), std::string::npos) << p;
  }
}

TEST_F(static_site_test, api_paths_get_the_json_404_not_the_page) {
  static_site s(root.string());
  for (std::string p : {"/v1", "/v1/unknown", "/healthz/x", "/metrics/x"}) {
    auto r = get(s, p);
    EXPECT_EQ(r.status, 404) << p;
    EXPECT_EQ(r.body, R"({"error":{"code":"not_found","message":"no such route"}})") << p;
  }
}

TEST_F(static_site_test, traversal_and_hidden_files_are_refused_without_fallback) {
  static_site s(root.string());
  for (std::string p :
       {"/../secret.txt", "/assets/../../secret.txt", "/.env", "/..", "/a/../index.html", "/..%2fsecret.txt"}) {
    auto r = get(s, p);
    EXPECT_EQ(r.status, 404) << p;
    EXPECT_EQ(r.body.find("top secret"), std::string::npos) << p;
    EXPECT_EQ(r.body.find("SECRET"), std::string::npos) << p;
    EXPECT_EQ(r.content_type, "application/json") << p;
  }
}

TEST_F(static_site_test, symlinks_out_of_the_root_are_refused_and_inside_ones_served) {
  fs::create_symlink(base / "secret.txt", root / "leak.txt");
  fs::create_directory_symlink(base / "outside", root / "out");
  fs::create_symlink(root / "favicon.svg", root / "icon.svg");
  static_site s(root.string());

  EXPECT_FALSE(s.resolve("/leak.txt"));
  EXPECT_FALSE(s.resolve("/out/x.js"));
  auto r = get(s, "/leak.txt");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body.find("top secret"), std::string::npos);
  r = get(s, "/out/x.js");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body.find("evil"), std::string::npos);

  r = get(s, "/icon.svg");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "<svg/>");
}

TEST_F(static_site_test, a_root_that_is_a_symlink_still_works) {
  fs::create_directory_symlink(root, base / "current");
  static_site s((base / "current").string());
  EXPECT_EQ(get(s, "/assets/index-abc123.js").status, 200);
  EXPECT_EQ(get(s, "/../secret.txt").status, 404);
}

TEST_F(static_site_test, directories_are_not_files) {
  static_site s(root.string());
  EXPECT_FALSE(s.resolve("/assets"));
  EXPECT_FALSE(s.resolve("/assets/"));  // no assets/index.html
  EXPECT_TRUE(s.resolve("/"));
}

TEST_F(static_site_test, missing_root_answers_404_until_it_is_built) {
  static_site s((base / "not-built").string());
  EXPECT_FALSE(s.available());
  auto r = get(s, "/");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("\"code\":\"not_found\""), std::string::npos);
  EXPECT_NE(r.body.find("scripts/build-web.sh"), std::string::npos);

  // Built later: served without a restart.
  fs::create_directory_symlink(root, base / "not-built");
  EXPECT_TRUE(s.available());
  EXPECT_EQ(get(s, "/").status, 200);

  static_site off("");
  EXPECT_FALSE(off.available());
  EXPECT_EQ(get(off, "/").status, 404);
}

}  // namespace
}  // namespace chatd::web

#include "web/static_files.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <utility>

#include "net/reply.h"

namespace chatd::web {

namespace fs = std::filesystem;

namespace {

// Anything bigger is not part of a web client; refusing it keeps one request
// from pulling a huge file into memory.
constexpr std::uintmax_t max_file_bytes = 32u << 20;

// Vite puts content-hashed bundles under assets/: their name changes with
// their content, so browsers may keep them for a year without asking.
constexpr std::string_view immutable_dir = "assets/";

// The page talks to the gateway (same origin) and to the chat server's
// WebSocket, which is on another port, hence ws:/wss: in connect-src.
constexpr std::string_view html_csp =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool is_under(const fs::path& root, const fs::path& p) {
  auto [r, q] = std::mismatch(root.begin(), root.end(), p.begin(), p.end());
  return r == root.end() && q != p.end();
}

std::string etag_for(std::uintmax_t size, fs::file_time_type mtime) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "\"%jx-%llx\"", size,
                static_cast<unsigned long long>(mtime.time_since_epoch().count()));
  return buf;
}

// If-None-Match holds a comma-separated list of tags, or "*".
bool etag_matches(std::string_view header, std::string_view etag) {
  if (header.find('*') != std::string_view::npos) return true;
  std::size_t pos = 0;
  while ((pos = header.find(etag, pos)) != std::string_view::npos) {
    // Accept the tag itself or its weak form W/"..."; nothing glued to it.
    std::size_t end = pos + etag.size();
    bool left_ok = pos == 0 || header[pos - 1] == ' ' || header[pos - 1] == ',' || header[pos - 1] == '/';
    bool right_ok = end == header.size() || header[end] == ',' || header[end] == ' ';
    if (left_ok && right_ok) return true;
    pos = end;
  }
  return false;
}

net::http_response not_found(std::string_view message) { return net::error_reply(errc::not_found, message); }

}  // namespace

result<std::string> relative_path(std::string_view url_path) {
  auto refuse = [] { return make_error(errc::not_found, "no such file"); };
  if (url_path.empty() || url_path.front() != '/') return refuse();
  url_path.remove_prefix(1);
  if (url_path.find('\0') != std::string_view::npos || url_path.find('\\') != std::string_view::npos) {
    return refuse();
  }
  std::string out;
  out.reserve(url_path.size());
  while (!url_path.empty()) {
    auto slash = url_path.find('/');
    std::string_view seg = url_path.substr(0, slash);
    // "." and ".." are the traversal; any other hidden name (.git, .env) is
    // never part of a build and may be a secret.
    if (seg.empty() || seg.front() == '.') return refuse();
    out += seg;
    if (slash == std::string_view::npos) break;
    out += '/';
    url_path.remove_prefix(slash + 1);
  }
  return out;
}

std::string_view content_type_for(std::string_view file_name) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 22> types{{
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"json", "application/json"},
      {"map", "application/json"},
      {"webmanifest", "application/manifest+json"},
      {"txt", "text/plain; charset=utf-8"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"avif", "image/avif"},
      {"ico", "image/x-icon"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"ttf", "font/ttf"},
      {"wasm", "application/wasm"},
      {"xml", "application/xml"},
  }};
  auto slash = file_name.rfind('/');
  if (slash != std::string_view::npos) file_name.remove_prefix(slash + 1);
  auto dot = file_name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return "application/octet-stream";
  std::string ext(file_name.substr(dot + 1));
  std::transform(ext.begin(), ext.end(), ext.begin(), ascii_lower);
  for (const auto& [e, type] : types) {
    if (e == ext) return type;
  }
  return "application/octet-stream";
}

bool is_api_path(std::string_view p) {
  for (std::string_view prefix : {"/v1", "/healthz", "/readyz", "/metrics"}) {
    if (p.substr(0, prefix.size()) == prefix && (p.size() == prefix.size() || p[prefix.size()] == '/')) return true;
  }
  return false;
}

static_site::static_site(std::string root) : root_(std::move(root)) {
  if (root_.empty()) {
    spdlog::info("web: gateway.web_root is empty; the browser client is not served");
  } else if (!available()) {
    spdlog::warn(
        "web: no browser client in {} (gateway.web_root); build it with scripts/build-web.sh. "
        "Until then / answers 404",
        root_);
  } else {
    spdlog::info("web: serving the browser client from {}", root_);
  }
}

bool static_site::available() const {
  if (root_.empty()) return false;
  std::error_code ec;
  return fs::is_regular_file(fs::path(root_) / "index.html", ec);
}

result<fs::path> static_site::resolve(std::string_view url_path) const {
  auto rel = relative_path(url_path);
  if (!rel) return rel.err();
  if (root_.empty()) return make_error(errc::not_found, "no web root");
  std::error_code ec;
  // Canonical on both sides: a symlink inside the root that points outside
  // it resolves to a path that is not under the root, and is refused.
  fs::path root = fs::canonical(root_, ec);
  if (ec) return make_error(errc::not_found, "no web root");
  fs::path p = root / *rel;
  if (rel->empty() || rel->back() == '/') p /= "index.html";
  fs::path real = fs::canonical(p, ec);
  if (ec || !is_under(root, real)) return make_error(errc::not_found, "no such file");
  if (!fs::is_regular_file(real, ec)) return make_error(errc::not_found, "no such file");
  return real;
}

net::http_response static_site::serve(const net::http_request& req) const {
  if (is_api_path(req.path)) return not_found("no such route");
  if (!available()) return not_found("the web client is not built (scripts/build-web.sh)");
  if (auto file = resolve(req.path)) return file_response(*file, req, file->filename() == "index.html");
  // Refused paths never fall back: a traversal attempt gets a 404, not a page.
  auto rel = relative_path(req.path);
  if (!rel) return not_found("no such file");
  // A missing file (its last segment has an extension) is a 404, so a stale
  // bundle name never gets HTML with a 200; anything else is a client-side
  // route of the single-page app and gets index.html.
  std::string_view last = *rel;
  if (auto slash = last.rfind('/'); slash != std::string_view::npos) last.remove_prefix(slash + 1);
  if (last.find('.') != std::string_view::npos) return not_found("no such file");
  // Only a browser navigation (it asks for HTML) gets the page: API clients,
  // curl and scripts keep the contract's JSON 404 for a path nobody serves.
  auto accept = req.header("accept");
  if (!accept || accept->find("text/html") == std::string_view::npos) return not_found("no such route");
  auto index = resolve("/");
  if (!index) return not_found("the web client is not built (scripts/build-web.sh)");
  return file_response(*index, req, true);
}

net::http_response static_site::file_response(const fs::path& file, const net::http_request& req, bool is_index) const {
  std::error_code ec;
  auto size = fs::file_size(file, ec);
  if (ec) return not_found("no such file");
  if (size > max_file_bytes) return net::error_reply(errc::too_large, "file too large to serve");
  auto mtime = fs::last_write_time(file, ec);
  if (ec) return not_found("no such file");

  net::http_response r;
  std::string etag = etag_for(size, mtime);
  auto name = file.filename().string();
  r.content_type = std::string(content_type_for(name));
  r.headers.emplace_back("ETag", etag);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  // index.html names the hashed bundles, so it must be revalidated every
  // time (cheap with the ETag); hashed bundles never change.
  std::string rel = file.lexically_relative(fs::canonical(root_, ec)).generic_string();
  if (is_index) {
    r.headers.emplace_back("Cache-Control", "no-cache");
  } else if (rel.rfind(immutable_dir, 0) == 0) {
    r.headers.emplace_back("Cache-Control", "public, max-age=31536000, immutable");
  } else {
    r.headers.emplace_back("Cache-Control", "public, max-age=3600");
  }
  if (r.content_type.rfind("text/html", 0) == 0) {
    r.headers.emplace_back("Content-Security-Policy", std::string(html_csp));
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
  }
  if (auto inm = req.header("if-none-match"); inm && etag_matches(*inm, etag)) {
    r.status = 304;
    return r;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return not_found("no such file");
  r.body.resize(static_cast<std::size_t>(size));
  in.read(r.body.data(), static_cast<std::streamsize>(size));
  r.body.resize(static_cast<std::size_t>(in.gcount()));
  return r;
}

}  // namespace chatd::web

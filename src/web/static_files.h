// Serves the browser client's files (web/dist) from one directory: safe path
// handling, content types, cache headers and the single-page-app fallback.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/error.h"
#include "net/http.h"

namespace chatd::web {

// The file path a decoded URL path names, relative to the root, checked
// lexically: no "." or ".." segments, no hidden names (".git", ".env"), no
// empty segments ("//"), no backslashes or NUL bytes. "/" and a trailing "/"
// name the directory ("" or "dir/"). A refusal is not_found: a probe learns
// nothing about what exists.
result<std::string> relative_path(std::string_view url_path);

// The Content-Type for a file name, by extension (case-insensitive);
// application/octet-stream when unknown.
std::string_view content_type_for(std::string_view file_name);

// True for paths the API owns (/v1/..., /healthz, /readyz, /metrics): the
// site answers them with the contract's JSON 404, never with index.html.
bool is_api_path(std::string_view url_path);

class static_site {
 public:
  // `root` need not exist yet: it is looked up on every request, so building
  // web/dist while chatd runs is enough. Logs once at start when it is missing.
  explicit static_site(std::string root);

  const std::string& root() const { return root_; }
  bool available() const;

  // The regular file `url_path` names, strictly under the root after
  // symlinks are resolved; not_found otherwise (missing, a directory, a
  // symlink that leaves the root, a refused path).
  result<std::filesystem::path> resolve(std::string_view url_path) const;

  // The GET handler: the file; index.html for "/" and, when the request
  // accepts text/html (a browser navigation), for an unknown path that does
  // not look like a file (client-side routes); else the JSON 404.
  net::http_response serve(const net::http_request& req) const;

 private:
  net::http_response file_response(const std::filesystem::path& file, const net::http_request& req,
                                   bool is_index) const;

  std::string root_;
};

}  // namespace chatd::web

// A blocking HTTP/1.1 client for the setup calls targets make before the
// clock starts (accounts, conversations, discovery). One keep-alive
// connection per client; not for the measured path.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chatd_bench {

struct http_response {
  int status = 0;
  std::string body;
};

class http_client {
 public:
  http_client(std::string host, std::string port);
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  // Throws std::runtime_error when the server cannot be reached or the
  // connection breaks twice in a row.
  http_response request(std::string_view method, std::string_view target, std::string_view body = {},
                        const std::vector<std::pair<std::string, std::string>>& headers = {});

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Runs f(client, i) for i in [0, n) on up to `threads` threads, each with its
// own keep-alive client to host:port; rethrows the first error (and starts
// no new call after it).
void parallel_requests(const std::string& host, const std::string& port, std::size_t threads, std::size_t n,
                       const std::function<void(http_client&, std::size_t)>& f);

// Splits "host:port" (or "[v6]:port"); throws std::invalid_argument.
std::pair<std::string, std::string> split_host_port(std::string_view address);

}  // namespace chatd_bench

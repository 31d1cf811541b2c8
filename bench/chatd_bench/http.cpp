#include "http.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace chatd_bench {

struct http_client::impl {
  std::string host, port;
  asio::io_context ioc;
  asio::ip::tcp::socket sock{ioc};
  beast::flat_buffer buf;

  void connect() {
    asio::ip::tcp::resolver r(ioc);
    sock = asio::ip::tcp::socket(ioc);
    asio::connect(sock, r.resolve(host, port));
    sock.set_option(asio::ip::tcp::no_delay(true));
    buf.clear();
  }
};

http_client::http_client(std::string host, std::string port) : impl_(std::make_unique<impl>()) {
  impl_->host = std::move(host);
  impl_->port = std::move(port);
}

http_client::~http_client() = default;

http_response http_client::request(std::string_view method, std::string_view target, std::string_view body,
                                   const std::vector<std::pair<std::string, std::string>>& headers) {
  auto& i = *impl_;
  http::request<http::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(http::field::host, i.host + ":" + i.port);
  req.keep_alive(true);
  for (auto& [k, v] : headers) req.set(k, v);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::string(body);
  }
  req.prepare_payload();
  std::string last_error;
  // A keep-alive connection the server closed in the meantime fails on first
  // use; one fresh connection is worth trying before giving up.
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      if (!i.sock.is_open()) i.connect();
      http::write(i.sock, req);
      http::response<http::string_body> res;
      http::read(i.sock, i.buf, res);
      if (!res.keep_alive()) i.sock.close();
      return {static_cast<int>(res.result_int()), std::move(res.body())};
    } catch (const std::exception& e) {
      last_error = e.what();
      boost::system::error_code ignored;
      i.sock.close(ignored);
    }
  }
  throw std::runtime_error(std::string(method) + " " + std::string(target) + ": " + last_error);
}

std::pair<std::string, std::string> split_host_port(std::string_view a) {
  if (!a.empty() && a.front() == '[') {
    auto close = a.find(']');
    if (close == std::string_view::npos || close + 1 >= a.size() || a[close + 1] != ':')
      throw std::invalid_argument("bad address: " + std::string(a));
    return {std::string(a.substr(1, close - 1)), std::string(a.substr(close + 2))};
  }
  auto colon = a.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == a.size())
    throw std::invalid_argument("address needs host:port: " + std::string(a));
  return {std::string(a.substr(0, colon)), std::string(a.substr(colon + 1))};
}

void parallel_requests(const std::string& host, const std::string& port, std::size_t threads, std::size_t n,
                       const std::function<void(http_client&, std::size_t)>& f) {
  std::atomic<std::size_t> next{0};
  std::exception_ptr first_error;
  std::mutex mu;
  auto work = [&] {
    try {
      http_client http(host, port);
      for (std::size_t i; (i = next++) < n;) {
        {
          std::lock_guard lock(mu);
          if (first_error) return;
        }
        f(http, i);
      }
    } catch (...) {
      std::lock_guard lock(mu);
      if (!first_error) first_error = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  auto t = std::min(std::max<std::size_t>(threads, 1), n);
  for (std::size_t k = 0; k < t; ++k) pool.emplace_back(work);
  for (auto& th : pool) th.join();
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace chatd_bench

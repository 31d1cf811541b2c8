// A throw-away PKI for TLS tests: CAs and the server certificates they sign,
// made with the openssl command in a temporary directory that goes with it.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace chatd::testing_support {

class test_pki {
 public:
  test_pki() {
    std::random_device rd;
    dir_ = std::filesystem::temp_directory_path() / ("chatd-tls-" + std::to_string(rd()));
    std::filesystem::create_directories(dir_);
  }
  ~test_pki() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  test_pki(const test_pki&) = delete;
  test_pki& operator=(const test_pki&) = delete;

  // <name>.pem and <name>.key: a self-signed CA.
  void make_ca(const std::string& name) {
    ASSERT_EQ(run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=" + name +
                  " -keyout " + path(name + ".key") + " -out " + path(name + ".pem")),
              0);
  }
  // <name>.pem and <name>.key: a certificate signed by `ca` for the
  // subjectAltNames in `san` ("DNS:localhost,IP:127.0.0.1").
  void make_server(const std::string& name, const std::string& ca, const std::string& san) {
    std::ofstream(path(name + ".ext")) << "subjectAltName=" << san << "\n";
    ASSERT_EQ(run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=" + name + " -keyout " +
                  path(name + ".key") + " -out " + path(name + ".csr")),
              0);
    ASSERT_EQ(
        run("openssl x509 -req -days 1 -in " + path(name + ".csr") + " -CA " + path(ca + ".pem") + " -CAkey " +
            path(ca + ".key") + " -CAcreateserial -extfile " + path(name + ".ext") + " -out " + path(name + ".pem")),
        0);
  }
  std::string path(const std::string& file) const { return (dir_ / file).string(); }

 private:
  static int run(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }
  std::filesystem::path dir_;
};

}  // namespace chatd::testing_support

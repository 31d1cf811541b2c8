// `chatd all` with https on the gateway and wss on the chat server, a CA made
// at test time: a client logs in over https, discovery hands out a wss://
// URL, and a message goes from one participant to another over it.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "integration/api_client.h"
#include "integration/chat_client.h"
#include "integration/chatd_process.h"
#include "net/client.h"
#include "test_pki.h"

namespace chatd::testing {
namespace {

TEST(tls_process, https_login_and_a_message_over_wss) {
  testing_support::test_pki pki;
  pki.make_ca("ca");
  pki.make_server("chatd", "ca", "DNS:localhost,IP:127.0.0.1");
  // This process's clients trust the CA (read when their TLS context is built).
  ::setenv("SSL_CERT_FILE", pki.path("ca.pem").c_str(), 1);

  chatd_process p(
      std::vector<std::pair<std::string, std::string>>{{"gateway.tls_cert_file", pki.path("chatd.pem")},
                                                       {"gateway.tls_key_file", pki.path("chatd.key")},
                                                       {"chat_server.tls_cert_file", pki.path("chatd.pem")},
                                                       {"chat_server.tls_key_file", pki.path("chatd.key")}});
  p.start();
  api a(p.gateway_url());
  ASSERT_EQ(a.base().rfind("https://", 0), 0u);

  auto alice = make_participant(a, "user", "tls_alice");
  auto shop = make_participant(a, "shop", "tls_shop");
  auto conv = create_conversation(a, alice, "direct", {shop.id});

  auto d = a.get("/v1/discovery", alice.token);
  ASSERT_EQ(d.status, 200) << d.raw;
  std::string url(d.obj().at("servers").as_array().at(0).at("url").as_string());
  EXPECT_EQ(url.rfind("wss://", 0), 0u) << url;

  chat_client ca;
  chat_client cs;
  ASSERT_TRUE(ca.connect(a, alice.token));
  ASSERT_TRUE(cs.connect(a, shop.token));
  auto ack = ca.send_message(conv, "hello over wss");
  ASSERT_TRUE(ack.is_object()) << json::serialize(ack);
  EXPECT_EQ(ack.as_object().at("type").as_string(), "ack") << json::serialize(ack);
  auto got = cs.wait_type("message");
  ASSERT_TRUE(got) << "the shop got no message";
  EXPECT_EQ(got->as_object().at("message").at("body").as_string(), "hello over wss");

  // Plain http on the https port gets no answer.
  auto plain = net::http_request_sync("GET", "http://" + p.gateway() + "/healthz", "", {}, std::chrono::seconds(3));
  EXPECT_FALSE(plain && plain->status == 200);
}

TEST(tls_process, a_certificate_without_its_key_is_a_config_error) {
  testing_support::test_pki pki;
  pki.make_ca("ca");
  pki.make_server("chatd", "ca", "DNS:localhost");
  chatd_process p(std::vector<std::pair<std::string, std::string>>{{"gateway.tls_cert_file", pki.path("chatd.pem")}});
  try {
    p.start();
    ADD_FAILURE() << "started with a certificate and no key";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("tls_key_file"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace chatd::testing

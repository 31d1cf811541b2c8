#include "auth/password.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace chatd::auth {
namespace {

TEST(Password, HashVerifyRoundTrip) {
  std::string h = hash_password("correct horse battery", fast_password_params());
  EXPECT_EQ(h.rfind("$argon2id$", 0), 0u) << h;
  EXPECT_TRUE(verify_password(h, "correct horse battery"));
}

TEST(Password, WrongPasswordRejected) {
  std::string h = hash_password("correct horse battery", fast_password_params());
  EXPECT_FALSE(verify_password(h, "correct horse batterY"));
  EXPECT_FALSE(verify_password(h, ""));
  EXPECT_FALSE(verify_password(h, "correct horse battery "));
}

TEST(Password, SaltsDiffer) {
  std::string a = hash_password("same password", fast_password_params());
  std::string b = hash_password("same password", fast_password_params());
  EXPECT_NE(a, b);
  EXPECT_TRUE(verify_password(a, "same password"));
  EXPECT_TRUE(verify_password(b, "same password"));
}

TEST(Password, EmptyAndBinaryPasswords) {
  std::string h = hash_password("", fast_password_params());
  EXPECT_TRUE(verify_password(h, ""));
  EXPECT_FALSE(verify_password(h, "x"));
  const std::string nul("a\0b", 3);
  std::string h2 = hash_password(nul, fast_password_params());
  EXPECT_TRUE(verify_password(h2, nul));
  EXPECT_FALSE(verify_password(h2, "a"));  // the NUL does not truncate
}

TEST(Password, GarbageEncodedRejectedWithoutCrash) {
  std::string good = hash_password("pw", fast_password_params());
  const std::vector<std::string> garbage = {
      "",
      "x",
      "$argon2id$",
      "$argon2id$v=19$m=8,t=1,p=1$$",
      "$argon2id$v=19$m=999999999999,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
      "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
      "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
      good.substr(0, good.size() / 2),
      good + "AAAA",
      std::string(good).insert(5, 1, '\0'),
      std::string(1000, '$'),
      std::string(100000, 'a'),
  };
  for (const auto& g : garbage) EXPECT_FALSE(verify_password(g, "pw")) << g;
}

TEST(Password, NeedsRehash) {
  std::string h = hash_password("pw", fast_password_params());
  EXPECT_FALSE(password_needs_rehash(h, fast_password_params()));
  EXPECT_TRUE(password_needs_rehash(h, default_password_params()));
  EXPECT_TRUE(password_needs_rehash("garbage", fast_password_params()));
}

TEST(Password, DefaultParamsAreMemoryHard) {
  password_params p = default_password_params();
  EXPECT_GE(p.opslimit, 2u);
  EXPECT_GE(p.memlimit, std::size_t{32} << 20);
  // One real hash, so a broken default is found here and not at the first login.
  std::string h = hash_password("a real password", p);
  EXPECT_NE(h.find("m=65536,t=2,p=1"), std::string::npos) << h;
  EXPECT_TRUE(verify_password(h, "a real password"));
}

TEST(Password, ConcurrentFirstUse) {
  // sodium_init() must run once even when the first calls race.
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&ok, i] {
      std::string h = hash_password("pw" + std::to_string(i), fast_password_params());
      ok[i] = verify_password(h, "pw" + std::to_string(i)) ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  for (int v : ok) EXPECT_EQ(v, 1);
}

}  // namespace
}  // namespace chatd::auth

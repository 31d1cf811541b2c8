// Registration and login above the store: the real RocksDB store, real
// Argon2id hashes.
#include "participants/service.h"

#include <gtest/gtest.h>

#include "auth/password.h"
#include "auth/token.h"
#include "common/ids.h"
#include "temp_store.h"

namespace chatd::participants {
namespace {

using store::participant_kind;

// Two services over one store: one hashing at the test-only minimum cost
// (as a deployment that ran with password_cost=fast), one at the real cost.
class participants_service : public ::testing::Test {
 protected:
  testing::temp_store db;
  id_generator ids{1};
  auth::token_signer tokens{std::string(32, 's')};
  service weak{*db, tokens, auth::fast_password_params(), ids, 3600};
  service strong{*db, tokens, auth::default_password_params(), ids, 3600};
};

TEST_F(participants_service, a_login_rehashes_a_password_hashed_with_weaker_parameters) {
  // Registered while the cost was the test-only minimum...
  auto p = weak.register_participant({participant_kind::user, "rehashed", "password123", "R", ""});
  ASSERT_TRUE(p) << p.err().message;
  auto before = db->get_participant(p->id)->password_hash;
  ASSERT_TRUE(auth::password_needs_rehash(before, auth::default_password_params()));

  // ...then the process runs with the real cost: a wrong password changes
  // nothing, the right one logs in and leaves a stronger hash.
  EXPECT_EQ(strong.login(participant_kind::user, "rehashed", "wrong-password").err().code, errc::unauthorized);
  EXPECT_EQ(db->get_participant(p->id)->password_hash, before);
  ASSERT_TRUE(strong.login(participant_kind::user, "rehashed", "password123"));
  auto after = db->get_participant(p->id)->password_hash;
  EXPECT_NE(after, before);
  EXPECT_FALSE(auth::password_needs_rehash(after, auth::default_password_params()));
  EXPECT_TRUE(auth::verify_password(after, "password123"));
  // The next login finds nothing to do and still works.
  ASSERT_TRUE(strong.login(participant_kind::user, "rehashed", "password123"));
  EXPECT_EQ(db->get_participant(p->id)->password_hash, after);
}

TEST_F(participants_service, a_banned_participant_is_refused_before_any_rehash) {
  auto p = weak.register_participant({participant_kind::shop, "banned.shop", "password123", "B", ""});
  ASSERT_TRUE(p);
  ASSERT_TRUE(db->set_banned(p->id, true));
  auto before = db->get_participant(p->id)->password_hash;
  EXPECT_EQ(strong.login(participant_kind::shop, "banned.shop", "password123").err().code, errc::forbidden);
  EXPECT_EQ(db->get_participant(p->id)->password_hash, before);
}

}  // namespace
}  // namespace chatd::participants

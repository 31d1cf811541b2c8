// The helpers every store implementation shares (store.cpp).
#include "store/store.h"

#include <gtest/gtest.h>

#include "common/ids.h"

namespace chatd::store {
namespace {

TEST(store_message_bucket, IsTenDaysOfTheIdsTimestamp) {
  EXPECT_EQ(message_bucket(0), 0u);
  EXPECT_EQ(message_bucket(id_floor_for_ms(id_epoch_ms + bucket_span_ms - 1)), 0u);
  EXPECT_EQ(message_bucket(id_floor_for_ms(id_epoch_ms + bucket_span_ms)), 1u);
  EXPECT_EQ(message_bucket(id_floor_for_ms(id_epoch_ms + 25 * bucket_span_ms + 12345)), 25u);
  // The last id of a millisecond is in that millisecond's bucket.
  auto next_bucket_floor = id_floor_for_ms(id_epoch_ms + 3 * bucket_span_ms);
  EXPECT_EQ(message_bucket(next_bucket_floor - 1), 2u);
  EXPECT_EQ(message_bucket(next_bucket_floor), 3u);
  EXPECT_EQ(message_bucket(~0ULL), static_cast<std::uint32_t>(((~0ULL) >> 22) / bucket_span_ms));
}

TEST(store_names, RoundTrip) {
  for (auto k : {participant_kind::user, participant_kind::shop, participant_kind::admin}) {
    EXPECT_EQ(parse_kind(kind_name(k)), k);
  }
  EXPECT_EQ(kind_name(participant_kind::shop), "shop");
  EXPECT_EQ(parse_kind("User"), std::nullopt);
  EXPECT_EQ(parse_kind(""), std::nullopt);
  EXPECT_EQ(presence_name(presence_state::offline), "offline");
  EXPECT_EQ(presence_name(presence_state::inactive), "inactive");
  EXPECT_EQ(presence_name(presence_state::active), "active");
}

TEST(store_fold_display_name, LowersAsciiAndCommonScripts) {
  EXPECT_EQ(fold_display_name("Hello World_42"), "hello world_42");
  EXPECT_EQ(fold_display_name("ÉMILE À Ÿ"), "émile à ÿ");
  EXPECT_EQ(fold_display_name("ŁÓDŹ ĄĘ"), "łódź ąę");
  EXPECT_EQ(fold_display_name("ΑΘΗΝΑ Ώ"), "αθηνα ώ");
  EXPECT_EQ(fold_display_name("МОСКВА ЁЖ"), "москва ёж");
  EXPECT_EQ(fold_display_name("×÷ß"), "×÷ß");                                    // no case, unchanged
  EXPECT_EQ(fold_display_name("東京 🎉"), "東京 🎉");                              // longer sequences pass through
  EXPECT_EQ(fold_display_name(std::string("\xC3", 1)), std::string("\xC3", 1));  // truncated
  EXPECT_EQ(fold_display_name(std::string("A\xFF"
                                          "B",
                                          3)),
            std::string("a\xFF"
                        "b",
                        3));
}

}  // namespace
}  // namespace chatd::store

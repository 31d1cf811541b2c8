#include "common/error.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "common/big_endian.h"

namespace chatd {
namespace {

TEST(error, every_code_name_reads_back_as_its_code) {
  for (auto c : {errc::bad_request, errc::unauthorized, errc::forbidden, errc::not_found, errc::conflict,
                 errc::too_large, errc::rate_limited, errc::unavailable, errc::internal}) {
    EXPECT_EQ(code_from_name(code_name(c)), c) << code_name(c);
  }
}

TEST(error, an_unknown_name_is_internal) {
  EXPECT_EQ(code_from_name(""), errc::internal);
  EXPECT_EQ(code_from_name("NOT_FOUND"), errc::internal);
  EXPECT_EQ(code_from_name("teapot"), errc::internal);
}

TEST(big_endian, round_trips_and_orders_bytewise_as_numbers) {
  std::string a, b;
  put_be64(a, 0x0102030405060708ULL);
  ASSERT_EQ(a.size(), 8u);
  EXPECT_EQ(static_cast<unsigned char>(a[0]), 0x01);
  EXPECT_EQ(static_cast<unsigned char>(a[7]), 0x08);
  EXPECT_EQ(get_be64(a.data()), 0x0102030405060708ULL);

  a.clear();
  put_be32(a, 255);
  put_be32(b, 256);
  EXPECT_LT(std::memcmp(a.data(), b.data(), 4), 0);
  EXPECT_EQ(get_be32(a.data()), 255u);
  EXPECT_EQ(get_be32(b.data()), 256u);

  std::string max;
  put_be64(max, ~0ULL);
  EXPECT_EQ(get_be64(max.data()), ~0ULL);
}

}  // namespace
}  // namespace chatd

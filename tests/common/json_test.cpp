#include "common/json.h"

#include <gtest/gtest.h>

namespace chatd {
namespace {

TEST(json, rejects_bad_documents) {
  EXPECT_FALSE(parse_json_object("{"));
  EXPECT_FALSE(parse_json_object("[]"));
  EXPECT_FALSE(parse_json_object("\"x\""));
  EXPECT_FALSE(parse_json_object(""));
  EXPECT_FALSE(parse_json_object("{\"a\":\"\xff\"}"));  // invalid UTF-8
  std::string deep(100, '[');
  EXPECT_FALSE(parse_json_object("{\"a\":" + deep + std::string(100, ']') + "}"));
  auto r = parse_json_object("{\"a\":1}");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->at("a").as_int64(), 1);
  EXPECT_EQ(parse_json_object("{").err().code, errc::bad_request);
}

TEST(json, rejects_duplicate_keys_at_any_depth) {
  EXPECT_FALSE(parse_json_object(R"({"a":1,"a":2})"));
  EXPECT_FALSE(parse_json_object(R"({"a":1,"\u0061":2})"));  // the same key, escaped
  EXPECT_FALSE(parse_json_object(R"({"x":{"b":[1,{"c":1,"c":1}]}})"));
  // The same key in sibling objects, keys that look alike, keys inside strings.
  EXPECT_TRUE(parse_json_object(R"({"o":[{"a":1},{"a":2}],"a":"\"a\":1","A":3})"));
  EXPECT_TRUE(parse_json_object(R"({"a\"b":1,"a":2,"s":"{\"a\":1,\"a\":1}"})"));
  // Many distinct keys stay linear and fine.
  std::string many = "{";
  for (int i = 0; i < 50000; ++i) many += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":0";
  many += "}";
  EXPECT_TRUE(parse_json_object(many));
}

TEST(json, fields_check_types_and_unknown_keys) {
  auto o = parse_json_object(R"({"s":"x","id":"42","n":7,"ids":["1","2"],"extra":true})").value();
  json_fields f(o);
  EXPECT_EQ(f.str("s", true), "x");
  EXPECT_EQ(f.id("id", true), 42u);
  EXPECT_EQ(f.integer("n", true, 0, 10), 7);
  auto ids = f.id_array("ids", true, 5);
  ASSERT_TRUE(ids);
  EXPECT_EQ(ids->size(), 2u);
  auto s = f.finish();
  ASSERT_FALSE(s);
  EXPECT_NE(s.err().message.find("extra"), std::string::npos);

  auto o2 = parse_json_object(R"({"id":42})").value();
  json_fields f2(o2);
  f2.id("id", true);
  EXPECT_FALSE(f2.finish());

  auto o3 = parse_json_object(R"({"n":99999999999999999999})").value();
  json_fields f3(o3);
  f3.integer("n", true, 0, 10);
  EXPECT_FALSE(f3.finish());

  auto o4 = parse_json_object(R"({})").value();
  json_fields f4(o4);
  f4.str("missing", true);
  auto s4 = f4.finish();
  ASSERT_FALSE(s4);
  EXPECT_NE(s4.err().message.find("missing"), std::string::npos);
}

TEST(json, utf8_helpers) {
  EXPECT_TRUE(valid_utf8("h\xc3\xa9llo \xf0\x9f\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xc3"));
  EXPECT_FALSE(valid_utf8("\xc0\x80"));          // overlong
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_EQ(utf8_length("h\xc3\xa9llo \xf0\x9f\x98\x80"), 7u);
  EXPECT_EQ(utf8_prefix("h\xc3\xa9llo", 2), "h\xc3\xa9");
}

}  // namespace
}  // namespace chatd

namespace chatd {
namespace {

TEST(to_json, writes_doubles_in_plain_decimal_form) {
  json::object o{{"load", 0.0},
                 {"distance_km", 483.4},
                 {"tiny", 0.000125},
                 {"big", 1e21},
                 {"n", 7},
                 {"s", "a\"b"},
                 {"list", json::array{1.5, -2.0, nullptr, true}}};
  EXPECT_EQ(to_json(o), R"({"load":0,"distance_km":483.4,"tiny":0.000125,"big":1000000000000000000000,"n":7,)"
                        R"("s":"a\"b","list":[1.5,-2,null,true]})");
  // Without doubles it is Boost.JSON's text.
  json::object plain{{"a", 1}, {"b", "x"}};
  EXPECT_EQ(to_json(plain), json::serialize(plain));
  // What it writes reads back as the same values.
  auto back = json::parse(to_json(o));
  EXPECT_EQ(back.at("distance_km").to_number<double>(), 483.4);
  EXPECT_EQ(back.at("tiny").to_number<double>(), 0.000125);
}

}  // namespace
}  // namespace chatd

// Who may add members to a conversation: in a group the creator and admins
// (admins also join with their own id); any other member is forbidden, and
// someone who cannot see the conversation gets not_found first. The store is
// the real RocksDB one.
#include "chat/conversations.h"

#include <gtest/gtest.h>

#include "common/ids.h"
#include "temp_store.h"

namespace chatd::chat {
namespace {

class conversations_test : public ::testing::Test {
 protected:
  conversations_test() : ids(1), conversations(*db, ids) {
    creator = person(store::participant_kind::user, "creator");
    member = person(store::participant_kind::shop, "member");
    outsider = person(store::participant_kind::user, "outsider");
    newcomer = person(store::participant_kind::user, "newcomer");
    admin = person(store::participant_kind::admin, "root");
    group = conversations.create(creator, store::conversation_kind::group, {member.id}, "team")->first.conv.id;
  }
  store::participant person(store::participant_kind k, const std::string& name) {
    return db.add_participant(ids.next(), k, name);
  }
  bool is_member(std::uint64_t conv, const store::participant& p) { return *db->is_member(conv, p.id); }

  testing::temp_store db;
  id_generator ids;
  conversation_service conversations;
  store::participant creator, member, outsider, newcomer, admin;
  std::uint64_t group = 0;
};

TEST_F(conversations_test, a_new_conversation_records_and_shows_its_creator) {
  auto v = conversations.get(member, group);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->conv.creator_id, creator.id);
  auto o = conversation_json(*v);
  EXPECT_EQ(o.at("created_by").as_string(), format_id(creator.id));
  auto direct = conversations.create(member, store::conversation_kind::direct, {creator.id}, "");
  ASSERT_TRUE(direct);
  EXPECT_EQ(conversation_json(direct->first).at("created_by").as_string(), format_id(member.id));
}

// "Seen" after a reload: a view carries how far each other member read;
// the caller's own position stays in last_read_message_id.
TEST_F(conversations_test, a_view_shows_how_far_the_other_members_have_read) {
  store::message m;
  m.id = ids.next();
  m.conversation_id = group;
  m.sender_id = creator.id;
  m.sender_kind = creator.kind;
  m.body = "hello";
  m.created_at = id_timestamp_ms(m.id);
  ASSERT_TRUE(db->insert_message(m));
  EXPECT_TRUE(conversations.get(creator, group)->read_states.empty()) << "nobody read anything yet";
  ASSERT_TRUE(conversations.mark_read(member, group, m.id));

  auto v = conversations.get(creator, group);
  ASSERT_TRUE(v);
  ASSERT_EQ(v->read_states.size(), 1u);
  EXPECT_EQ(v->read_states[0].first, member.id);
  EXPECT_EQ(v->read_states[0].second, m.id);
  const auto reads = conversation_json(*v).at("read_states").as_array();
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(reads[0].at("participant_id").as_string(), format_id(member.id));
  EXPECT_EQ(reads[0].at("message_id").as_string(), format_id(m.id));

  auto mine = conversations.get(member, group);
  ASSERT_TRUE(mine);
  EXPECT_TRUE(mine->read_states.empty());
  EXPECT_EQ(conversation_json(*mine).at("last_read_message_id").as_string(), format_id(m.id));
}

TEST_F(conversations_test, the_creator_adds_members_to_a_group) {
  auto v = conversations.add_member(creator, group, newcomer.id);
  ASSERT_TRUE(v) << v.err().message;
  EXPECT_EQ(v->members.size(), 3u);
  EXPECT_TRUE(is_member(group, newcomer));
}

TEST_F(conversations_test, another_member_may_not_add_to_a_group) {
  auto r = conversations.add_member(member, group, newcomer.id);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::forbidden);
  EXPECT_NE(r.err().message.find("creator"), std::string::npos) << r.err().message;
  EXPECT_FALSE(is_member(group, newcomer));
  // Not even someone who is not there yet, nor an id that does not exist:
  // the refusal comes before the target is looked up.
  EXPECT_EQ(conversations.add_member(member, group, 987654321).err().code, errc::forbidden);
  // A member the creator added is no more allowed than the first ones.
  ASSERT_TRUE(conversations.add_member(creator, group, newcomer.id));
  EXPECT_EQ(conversations.add_member(newcomer, group, outsider.id).err().code, errc::forbidden);
  EXPECT_FALSE(is_member(group, outsider));
}

TEST_F(conversations_test, an_outsider_gets_not_found_before_any_ownership_rule) {
  EXPECT_EQ(conversations.add_member(outsider, group, newcomer.id).err().code, errc::not_found);
  EXPECT_EQ(conversations.add_member(outsider, group, outsider.id).err().code, errc::not_found);
  EXPECT_EQ(conversations.add_member(outsider, 424242, outsider.id).err().code, errc::not_found);
  EXPECT_FALSE(is_member(group, outsider));
  EXPECT_FALSE(is_member(group, newcomer));
}

TEST_F(conversations_test, admins_join_any_group_and_add_to_it) {
  auto joined = conversations.add_member(admin, group, admin.id);
  ASSERT_TRUE(joined) << joined.err().message;
  EXPECT_TRUE(is_member(group, admin));
  auto added = conversations.add_member(admin, group, newcomer.id);
  ASSERT_TRUE(added) << added.err().message;
  EXPECT_TRUE(is_member(group, newcomer));
  // An admin who has not joined may add someone too (moderation).
  auto other = conversations.create(member, store::conversation_kind::group, {}, "solo");
  ASSERT_TRUE(other);
  auto id = other->first.conv.id;
  ASSERT_TRUE(conversations.add_member(admin, id, outsider.id));
  EXPECT_TRUE(is_member(id, outsider));
  EXPECT_FALSE(is_member(id, admin));
  // An unknown participant is still not_found for them.
  EXPECT_EQ(conversations.add_member(admin, group, 987654321).err().code, errc::not_found);
}

// A group stored before the creator was kept (creator 0) has no creator to
// allow: only admins add to it.
TEST_F(conversations_test, a_group_without_a_known_creator_takes_members_from_admins_only) {
  store::conversation c;
  c.id = ids.next();
  c.kind = store::conversation_kind::group;
  c.title = "from before";
  c.created_at = now_ms();
  ASSERT_TRUE(db->create_conversation(c, {creator.id, member.id}));
  auto v = conversations.get(creator, c.id);
  ASSERT_TRUE(v);
  EXPECT_TRUE(conversation_json(*v).at("created_by").is_null());
  EXPECT_EQ(conversations.add_member(creator, c.id, newcomer.id).err().code, errc::forbidden);
  EXPECT_EQ(conversations.add_member(member, c.id, newcomer.id).err().code, errc::forbidden);
  EXPECT_EQ(conversations.add_member(outsider, c.id, outsider.id).err().code, errc::not_found);
  EXPECT_FALSE(is_member(c.id, newcomer));
  ASSERT_TRUE(conversations.add_member(admin, c.id, newcomer.id));
  ASSERT_TRUE(conversations.add_member(admin, c.id, admin.id));
}

TEST_F(conversations_test, direct_conversations_keep_their_rules) {
  auto d = conversations.create(creator, store::conversation_kind::direct, {member.id}, "");
  ASSERT_TRUE(d);
  auto id = d->first.conv.id;
  // Not even its creator adds a third person; admins only join themselves.
  EXPECT_EQ(conversations.add_member(creator, id, newcomer.id).err().code, errc::forbidden);
  EXPECT_EQ(conversations.add_member(member, id, newcomer.id).err().code, errc::forbidden);
  EXPECT_EQ(conversations.add_member(outsider, id, outsider.id).err().code, errc::not_found);
  EXPECT_EQ(conversations.add_member(admin, id, newcomer.id).err().code, errc::forbidden);
  ASSERT_TRUE(conversations.add_member(admin, id, admin.id));
  EXPECT_FALSE(is_member(id, newcomer));
}

}  // namespace
}  // namespace chatd::chat

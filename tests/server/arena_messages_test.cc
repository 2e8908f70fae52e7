// The arena message allocator: a call's request and response share one arena, whatever
// their size, and a holder releases both.
#include "server/arena_messages.h"

#include <gtest/gtest.h>

#include <string>

#include "ringwarden/v1/agent.pb.h"

namespace ringwarden {
namespace {

namespace v1 = ::ringwarden::v1;

TEST(ArenaMessageAllocatorTest, RequestAndResponseShareOneArenaAndGrowPastItsFirstBlock) {
  ArenaMessageAllocator<v1::GetAssignmentRequest, v1::GetAssignmentResponse, 256> allocator;
  for (int round = 0; round < 3; ++round) {
    grpc::MessageHolder<v1::GetAssignmentRequest, v1::GetAssignmentResponse>* holder =
        allocator.AllocateMessages();
    v1::GetAssignmentRequest* request = holder->request();
    v1::GetAssignmentResponse* response = holder->response();
    ASSERT_NE(request->GetArena(), nullptr);
    EXPECT_EQ(request->GetArena(), response->GetArena());
    // Far more than the first block: the arena takes more blocks, and every field reads back.
    request->set_agent_id(std::string(10'000, 'a'));
    for (int i = 0; i < 100; ++i) {
      request->add_channels("rules.channel-" + std::to_string(i));
      response->add_floors(std::string(1'000, static_cast<char>('a' + i % 26)));
    }
    response->set_signed_assignment(std::string(50'000, 's'));
    EXPECT_EQ(request->agent_id().size(), 10'000u);
    EXPECT_EQ(request->channels(99), "rules.channel-99");
    EXPECT_EQ(response->floors(27), std::string(1'000, 'b'));
    EXPECT_EQ(response->signed_assignment().size(), 50'000u);
    holder->Release();
  }
}

}  // namespace
}  // namespace ringwarden

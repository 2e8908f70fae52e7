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

TEST(ArenaMessageAllocatorTest, APollsMessagesAreBuiltInTheHoldersOwnBlock) {
  ArenaMessageAllocator<v1::GetAssignmentRequest, v1::GetAssignmentResponse> allocator;
  grpc::MessageHolder<v1::GetAssignmentRequest, v1::GetAssignmentResponse>* holder =
      allocator.AllocateMessages();
  holder->request()->set_agent_id("host-1");
  holder->request()->add_channels("rules.behavioral");
  holder->response()->set_ring("canary");
  // The first block is inside the holder (4 KiB and the holder's few fields): the messages
  // and their strings took no allocation of their own.
  const char* begin = reinterpret_cast<const char*>(holder);
  const char* end = begin + 4096 + 256;
  for (const void* at :
       {static_cast<const void*>(holder->request()), static_cast<const void*>(holder->response()),
        static_cast<const void*>(&holder->request()->agent_id()),
        static_cast<const void*>(&holder->request()->channels(0)),
        static_cast<const void*>(&holder->response()->ring())}) {
    const char* p = static_cast<const char*>(at);
    EXPECT_TRUE(p > begin && p < end)
        << static_cast<const void*>(p) << " not in " << static_cast<const void*>(begin);
  }
  holder->Release();
}

}  // namespace
}  // namespace ringwarden

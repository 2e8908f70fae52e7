// arena_messages.h: a gRPC message allocator that places a call's request and response on a
// protobuf arena whose first block lives in the holder itself.
//
// With gRPC's default allocator every string and sub-message of a parsed request, and of
// the response the handler fills, is its own heap allocation (a poll: the agent id, each
// channel name, the held statement and its digest, the ring...). On an arena they are bump
// allocations in one block, freed together when gRPC releases the call's messages, so a
// call costs one allocation (the holder) however many fields it carries.
//
//   static ArenaMessageAllocator<Req, Resp> allocator;  // outlives the server
//   service.SetMessageAllocatorFor_Method(&allocator);
#pragma once

#include <google/protobuf/arena.h>
#include <grpcpp/support/message_allocator.h>

#include <cstddef>

namespace ringwarden {

template <typename Request, typename Response, size_t kInitialBlockBytes = 4096>
class ArenaMessageAllocator : public grpc::MessageAllocator<Request, Response> {
 public:
  grpc::MessageHolder<Request, Response>* AllocateMessages() override { return new Holder; }

 private:
  class Holder : public grpc::MessageHolder<Request, Response> {
   public:
    Holder() : arena_(Options(initial_block_)) {
      this->set_request(google::protobuf::Arena::CreateMessage<Request>(&arena_));
      this->set_response(google::protobuf::Arena::CreateMessage<Response>(&arena_));
    }
    void Release() override { delete this; }

   private:
    static google::protobuf::ArenaOptions Options(char* block) {
      google::protobuf::ArenaOptions options;
      options.initial_block = block;
      options.initial_block_size = kInitialBlockBytes;
      return options;
    }

    // A larger message than the block holds takes more blocks from the heap, as an arena
    // does; the block is declared first, so it outlives the arena that uses it.
    alignas(std::max_align_t) char initial_block_[kInitialBlockBytes];
    google::protobuf::Arena arena_;
  };
};

}  // namespace ringwarden

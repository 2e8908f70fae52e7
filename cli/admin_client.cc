#include "cli/admin_client.h"

#include "absl/strings/str_cat.h"

namespace ringwarden {

AdminClient::AdminClient(const std::string& server, std::string token, absl::Duration timeout)
    : token_(std::move(token)), timeout_(timeout) {
  grpc::ChannelArguments args;
  // Uploads carry up to 16 MiB of payload.
  args.SetMaxSendMessageSize(20 * 1024 * 1024);
  args.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  stub_ = v1::AdminService::NewStub(
      grpc::CreateCustomChannel(server, grpc::InsecureChannelCredentials(), args));
}

}  // namespace ringwarden

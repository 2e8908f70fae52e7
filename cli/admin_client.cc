#include "cli/admin_client.h"

#include "absl/strings/str_cat.h"

namespace ringwarden {

AdminClient::AdminClient(const std::string& server, std::string token, absl::Duration timeout,
                         const std::string& server_ca_pem)
    : token_(std::move(token)), timeout_(timeout) {
  grpc::ChannelArguments args;
  // Uploads carry up to 16 MiB of payload.
  args.SetMaxSendMessageSize(20 * 1024 * 1024);
  args.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!server_ca_pem.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = server_ca_pem;
    credentials = grpc::SslCredentials(ssl);
  }
  stub_ = v1::AdminService::NewStub(grpc::CreateCustomChannel(server, credentials, args));
}

}  // namespace ringwarden

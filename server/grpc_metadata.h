// grpc_metadata.h: reading request metadata in the gRPC services.
#pragma once

#include <grpcpp/server_context.h>

#include <string>

namespace ringwarden {

// MetadataValue returns the client metadata value for `key`, or "" when absent.
inline std::string MetadataValue(const grpc::ServerContextBase& ctx, const char* key) {
  const auto& md = ctx.client_metadata();
  auto it = md.find(key);
  return it == md.end() ? std::string() : std::string(it->second.data(), it->second.size());
}

}  // namespace ringwarden

// grpc_metadata.h: reading request metadata in the gRPC services.
#pragma once

#include <grpcpp/server_context.h>

#include <string>

#include "absl/strings/string_view.h"

namespace ringwarden {

// MetadataValue returns the client metadata value for `key`, or "" when absent. The view
// lives as long as the call's context.
inline absl::string_view MetadataValue(const grpc::ServerContextBase& ctx, const char* key) {
  const auto& md = ctx.client_metadata();
  auto it = md.find(key);
  return it == md.end() ? absl::string_view()
                        : absl::string_view(it->second.data(), it->second.size());
}

}  // namespace ringwarden

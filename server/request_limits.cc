#include "server/request_limits.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/dsse.h"
#include "server/core/rollout_manager.h"

namespace ringwarden {
namespace {

struct MethodLimit {
  absl::string_view method;
  size_t bytes;
};

// A content upload carries the payload and its envelope; root and floor
// uploads an envelope. Everything else is small.
constexpr size_t kUploadSlack = 4 * 1024;
const MethodLimit kLimits[] = {
    // AgentService
    {"Enroll", 16 * 1024},  // a CSR (<= 8 KiB), 32 labels, a token, a host name
    {"RenewCredential", 12 * 1024},
    {"GetAssignment", 16 * 1024},  // 64 channels and versions
    {"FetchContent", 1024},
    {"ReportTelemetry", kMaxTelemetryRequestBytes},
    // AdminService uploads
    {"UploadContent", kMaxPayloadBytes + kMaxEnvelopeJsonBytes + kUploadSlack},
    {"UploadRoot", kMaxEnvelopeJsonBytes + kUploadSlack},
    {"UploadFloor", kMaxEnvelopeJsonBytes + kUploadSlack},
};

}  // namespace

size_t MaxRequestBytes(absl::string_view method) {
  for (const MethodLimit& limit : kLimits) {
    if (limit.method == method) {
      return limit.bytes;
    }
  }
  return kMaxAdminRequestBytes;
}

size_t MaxServerReceiveBytes() {
  size_t largest = kMaxAdminRequestBytes;
  for (const MethodLimit& limit : kLimits) {
    largest = std::max(largest, limit.bytes);
  }
  return largest;
}

absl::Status CheckRequestSize(absl::string_view method,
                              const google::protobuf::MessageLite& request) {
  const size_t limit = MaxRequestBytes(method);
  const size_t size = request.ByteSizeLong();
  if (size > limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        method, " request is ", size, " bytes; the limit of ", method, " is ", limit, " bytes"));
  }
  return absl::OkStatus();
}

}  // namespace ringwarden

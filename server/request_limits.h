// request_limits.h: the size of every RPC's request, per method.
//
// gRPC C++ has one receive limit per server, which must fit the largest call
// (a 16 MiB content upload). Every handler therefore checks its own request
// against its method's limit first, before any other work:
//
//   RETURN_IF_ERROR(CheckRequestSize("ReportTelemetry", req));
//
// Agent calls are kept to a few KiB (64 KiB for a telemetry batch); only the
// admin uploads (content, root and floor envelopes) get more. An oversized
// request is INVALID_ARGUMENT naming the method, its size and the limit: the
// same request would be refused again, so it must not be retried.
// Thread-safety: pure functions over constants.
#pragma once

#include <google/protobuf/message_lite.h>

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ringwarden {

// kMaxTelemetryRequestBytes bounds one ReportTelemetry batch; agents split
// their batches below it.
inline constexpr size_t kMaxTelemetryRequestBytes = 64 * 1024;
// kMaxAdminRequestBytes bounds every admin call but the uploads.
inline constexpr size_t kMaxAdminRequestBytes = 64 * 1024;

// MaxRequestBytes returns the request limit of `method` (the RPC's name, e.g.
// "GetAssignment"); a method not in the table gets kMaxAdminRequestBytes.
size_t MaxRequestBytes(absl::string_view method);

// MaxServerReceiveBytes is the largest limit of any method: the server-wide
// gRPC receive limit.
size_t MaxServerReceiveBytes();

// CheckRequestSize refuses `request` when its encoded size exceeds the limit
// of `method`.
absl::Status CheckRequestSize(absl::string_view method,
                              const google::protobuf::MessageLite& request);

}  // namespace ringwarden

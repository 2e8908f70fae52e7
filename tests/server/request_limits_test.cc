// The per-method request limits: agent calls small, only uploads large.
#include "server/request_limits.h"

#include <gtest/gtest.h>

#include <string>

#include "common/dsse.h"
#include "ringwarden/v1/agent.pb.h"
#include "server/core/rollout_manager.h"

namespace ringwarden {
namespace {

TEST(RequestLimitsTest, AgentCallsAreSmallAndOnlyUploadsAreLarge) {
  for (const char* method :
       {"Enroll", "RenewCredential", "GetAssignment", "FetchContent", "ReportTelemetry"}) {
    EXPECT_LE(MaxRequestBytes(method), 64u * 1024) << method;
  }
  EXPECT_EQ(MaxRequestBytes("ReportTelemetry"), 64u * 1024);
  EXPECT_EQ(MaxRequestBytes("FetchContent"), 1024u);
  EXPECT_EQ(MaxRequestBytes("SetPolicy"), kMaxAdminRequestBytes);
  EXPECT_EQ(MaxRequestBytes("NoSuchMethod"), kMaxAdminRequestBytes);
  EXPECT_GT(MaxRequestBytes("UploadContent"), kMaxPayloadBytes + kMaxEnvelopeJsonBytes);
  EXPECT_GT(MaxRequestBytes("UploadRoot"), kMaxEnvelopeJsonBytes);
  EXPECT_LT(MaxRequestBytes("UploadRoot"), 128u * 1024);
  // The server-wide gRPC limit is the largest one, the content upload.
  EXPECT_EQ(MaxServerReceiveBytes(), MaxRequestBytes("UploadContent"));
}

TEST(RequestLimitsTest, AnOversizedRequestIsInvalidArgumentNamingMethodSizeAndLimit) {
  v1::FetchContentRequest req;
  req.set_channel(std::string(1000, 'a'));
  EXPECT_TRUE(CheckRequestSize("FetchContent", req).ok());
  req.set_channel(std::string(1100, 'a'));
  const absl::Status refused = CheckRequestSize("FetchContent", req);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.message(), "FetchContent request is " + std::to_string(req.ByteSizeLong()) +
                                   " bytes; the limit of FetchContent is 1024 bytes");
}

}  // namespace
}  // namespace ringwarden

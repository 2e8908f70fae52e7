// fake_agent_service.h: an in-process AgentService for agent-client tests.
//
// Canned assignments per ring, content signed in the test, and switches to make
// the server misbehave (truncated or gapped streams, failed calls). Records what
// agents sent. FakeServer runs it on 127.0.0.1:0. Thread-safety: all methods are
// safe from any thread (gRPC calls them from its own).
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/ed25519.h"
#include "ringwarden/v1/agent.grpc.pb.h"
#include "ringwarden/v1/content.pb.h"

namespace ringwarden::agent::testing {

namespace v1 = ::ringwarden::v1;

// ServedContent is what FetchContent streams for one channel version, with
// knobs to break the stream.
struct ServedContent {
  std::string envelope_json;
  std::string payload;
  size_t chunk_bytes = 1000;
  int64_t total_size_override = -1;  // announce this total instead of payload.size()
  bool truncate = false;             // end with OK before the last chunk
  bool gap = false;                  // skip 1 byte between the first and second chunk
};

// SignedContent is content signed by a test key plus the matching assignment.
struct SignedContent {
  ServedContent served;
  v1::ChannelAssignment assignment;
};

// SignContent makes a manifest for `payload`, lets `edit` change it (to forge
// mismatches), signs it with `key` and returns the content and a matching
// assignment (of the unedited channel, version, digest and size).
SignedContent SignContent(const Ed25519PrivateKey& key, const std::string& channel, int64_t version,
                          const std::string& payload,
                          const std::function<void(v1::ContentManifest&)>& edit = nullptr);

class FakeAgentService final : public v1::AgentService::CallbackService {
 public:
  static constexpr char kSecret[] = "test-secret";

  // SetAssignments sets what agents of `ring` get ("*": every ring without its own).
  void SetAssignments(const std::string& ring, std::vector<v1::ChannelAssignment> assignments);
  void SetEmergencyStop(bool stop);
  void SetNextPollMs(int64_t ms);
  void AddContent(const std::string& channel, int64_t version, ServedContent content);
  // Serve installs `content` and assigns it to `ring`.
  void Serve(const std::string& ring, const SignedContent& content);
  // FailNext makes the next `n` calls of `method` ("GetAssignment", "ReportTelemetry",
  // "FetchContent", "Enroll") fail with `code`.
  void FailNext(const std::string& method, int n, grpc::StatusCode code);
  // ForgetTokens makes every issued token unknown (as after a server restart).
  void ForgetTokens();

  struct TelemetryCall {
    v1::ReportTelemetryRequest request;
    bool failed = false;  // injected failure; not accepted
    bool duplicate = false;
  };
  std::vector<TelemetryCall> telemetry() const;
  // Accepted events of `agent_id` of one kind.
  std::vector<v1::ApplyReport> ApplyReports(const std::string& agent_id) const;
  std::vector<v1::CrashReport> CrashReports(const std::string& agent_id) const;
  std::vector<v1::Heartbeat> Heartbeats(const std::string& agent_id) const;
  std::vector<v1::HealthEvent> HealthEvents(const std::string& agent_id) const;
  int calls(const std::string& method) const;
  std::string RingOf(const std::string& agent_id) const;

  grpc::ServerUnaryReactor* Enroll(grpc::CallbackServerContext* ctx, const v1::EnrollRequest* req,
                                   v1::EnrollResponse* resp) override;
  grpc::ServerUnaryReactor* GetAssignment(grpc::CallbackServerContext* ctx,
                                          const v1::GetAssignmentRequest* req,
                                          v1::GetAssignmentResponse* resp) override;
  grpc::ServerWriteReactor<v1::ContentChunk>* FetchContent(
      grpc::CallbackServerContext* ctx, const v1::FetchContentRequest* req) override;
  grpc::ServerUnaryReactor* ReportTelemetry(grpc::CallbackServerContext* ctx,
                                            const v1::ReportTelemetryRequest* req,
                                            v1::ReportTelemetryResponse* resp) override;

 private:
  grpc::Status Authenticate(grpc::CallbackServerContext& ctx, const std::string& agent_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Injected returns the injected failure for `method`, if one is due.
  bool Injected(const std::string& method, grpc::Status* status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<v1::TelemetryEvent> AcceptedEvents(const std::string& agent_id) const;

  mutable absl::Mutex mu_;
  std::map<std::string, std::vector<v1::ChannelAssignment>> assignments_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, int64_t>, ServedContent> content_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> tokens_ ABSL_GUARDED_BY(mu_);  // agent id -> token
  std::map<std::string, std::string> rings_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> last_seq_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::pair<int, grpc::StatusCode>> failures_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<TelemetryCall> telemetry_ ABSL_GUARDED_BY(mu_);
  bool emergency_stop_ ABSL_GUARDED_BY(mu_) = false;
  int64_t next_poll_ms_ ABSL_GUARDED_BY(mu_) = 1000;
  int64_t token_epoch_ ABSL_GUARDED_BY(mu_) = 0;
};

// FakeServer runs a FakeAgentService on 127.0.0.1 with a kernel-chosen port.
class FakeServer {
 public:
  FakeServer();
  ~FakeServer();
  FakeAgentService& service() { return service_; }
  const std::string& address() const { return address_; }

 private:
  FakeAgentService service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

}  // namespace ringwarden::agent::testing

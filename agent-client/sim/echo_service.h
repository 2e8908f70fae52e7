// echo_service.h: an AgentService that answers every poll at once with the same
// reply of a chosen size and checks nothing: the anchor the server's poll path
// is measured against (bench/poll.sh, B1), built from the same gRPC library.
// Tests also use it as a server that is slow or refuses.
// Thread-safety: gRPC calls it from its own threads; the options are fixed.
#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ringwarden/v1/agent.grpc.pb.h"

namespace ringwarden::agent {

struct EchoOptions {
  int reply_bytes = 0;                          // size of the poll reply's signed_assignment
  absl::Duration delay = absl::ZeroDuration();  // before each answer
  // CPU work per call, spent in the handler before it answers: what a server's own work
  // per call adds to the same gRPC path.
  absl::Duration busy = absl::ZeroDuration();
  grpc::StatusCode refuse = grpc::StatusCode::OK;  // else every call fails with it
  bool record = false;  // keep the agent ids and credentials of polls (tests)
};

// EchoTls is the echo's TLS, PEM texts, all three required: it serves TLS the way
// ringwarden-server does (gRPC's TLS credentials), asking for a client certificate and, when a
// client presents one, verifying it against `client_ca_pem`, so that agents calling with their
// certificates cost it what they cost the server's TLS.
struct EchoTls {
  std::string cert_pem, key_pem, client_ca_pem;
};
// EchoServerCredentials: INVALID_ARGUMENT when a PEM is missing.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> EchoServerCredentials(const EchoTls& tls);

class EchoAgentService final : public ::ringwarden::v1::AgentService::CallbackService {
 public:
  explicit EchoAgentService(EchoOptions options);
  ~EchoAgentService() override;

  grpc::ServerUnaryReactor* Enroll(grpc::CallbackServerContext* ctx,
                                   const ::ringwarden::v1::EnrollRequest* request,
                                   ::ringwarden::v1::EnrollResponse* response) override;
  grpc::ServerUnaryReactor* GetAssignment(
      grpc::CallbackServerContext* ctx, const ::ringwarden::v1::GetAssignmentRequest* request,
      ::ringwarden::v1::GetAssignmentResponse* response) override;
  grpc::ServerUnaryReactor* ReportTelemetry(
      grpc::CallbackServerContext* ctx, const ::ringwarden::v1::ReportTelemetryRequest* request,
      ::ringwarden::v1::ReportTelemetryResponse* response) override;

  // With `record`: the distinct agents that polled, the polls that carried the echo's own
  // credential (Enroll's) or any bearer credential, those that came over a connection whose
  // verified client certificate names the polling agent, and those that named a held statement.
  size_t distinct_pollers() const;
  int64_t polls_with_credential() const;
  int64_t polls_with_bearer() const;
  int64_t polls_with_own_certificate() const;
  int64_t polls_naming_held() const;

 private:
  // Answer finishes `reactor` now, or after the delay on the delayed thread.
  grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* ctx);
  void DelayLoop();

  const EchoOptions options_;
  ::ringwarden::v1::GetAssignmentResponse reply_;
  absl::Mutex mu_;
  std::deque<std::pair<absl::Time, grpc::ServerUnaryReactor*>> delayed_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  mutable absl::Mutex record_mu_;
  absl::flat_hash_set<std::string> pollers_ ABSL_GUARDED_BY(record_mu_);
  int64_t polls_with_credential_ ABSL_GUARDED_BY(record_mu_) = 0;
  int64_t polls_with_bearer_ ABSL_GUARDED_BY(record_mu_) = 0;
  int64_t polls_with_own_certificate_ ABSL_GUARDED_BY(record_mu_) = 0;
  int64_t polls_naming_held_ ABSL_GUARDED_BY(record_mu_) = 0;
  std::thread delayer_;
};

// LocalEcho serves an EchoAgentService over plaintext on a loopback port chosen by the system,
// until it is destroyed (tests). `server` is null when it could not listen.
struct LocalEcho {
  explicit LocalEcho(EchoOptions options);
  ~LocalEcho();
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }

  EchoAgentService service;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
};

}  // namespace ringwarden::agent

#include "agent-client/sim/echo_service.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <time.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/pki.h"

namespace ringwarden::agent {

namespace v1 = ::ringwarden::v1;

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> EchoServerCredentials(const EchoTls& tls) {
  if (tls.cert_pem.empty() || tls.key_pem.empty() || tls.client_ca_pem.empty()) {
    return absl::InvalidArgumentError(
        "echo TLS needs a certificate, its key and the CA of client certificates");
  }
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      tls.client_ca_pem,
      std::vector<grpc::experimental::IdentityKeyCertPair>{{tls.key_pem, tls.cert_pem}});
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

EchoAgentService::EchoAgentService(EchoOptions options) : options_(options) {
  reply_.set_ring("broad");
  reply_.set_next_poll_ms(300000);
  reply_.set_signed_assignment(std::string(static_cast<size_t>(options_.reply_bytes), 'x'));
  if (options_.delay > absl::ZeroDuration()) {
    delayer_ = std::thread([this] { DelayLoop(); });
  }
}

EchoAgentService::~EchoAgentService() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (delayer_.joinable()) {
    delayer_.join();
  }
}

grpc::ServerUnaryReactor* EchoAgentService::Answer(grpc::CallbackServerContext* ctx) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (options_.busy > absl::ZeroDuration()) {
    // Spins on the thread's CPU clock: time this thread spent preempted is not work.
    timespec start{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
    const int64_t until =
        absl::ToInt64Nanoseconds(absl::DurationFromTimespec(start) + options_.busy);
    for (timespec now = start; absl::ToInt64Nanoseconds(absl::DurationFromTimespec(now)) < until;) {
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    }
  }
  if (options_.delay > absl::ZeroDuration()) {
    absl::MutexLock lock(&mu_);
    delayed_.emplace_back(absl::Now() + options_.delay, reactor);
    return reactor;
  }
  reactor->Finish(options_.refuse == grpc::StatusCode::OK
                      ? grpc::Status::OK
                      : grpc::Status(options_.refuse, "refused by the echo server"));
  return reactor;
}

void EchoAgentService::DelayLoop() {
  for (;;) {
    std::pair<absl::Time, grpc::ServerUnaryReactor*> next{absl::InfiniteFuture(), nullptr};
    {
      absl::MutexLock lock(&mu_);
      if (delayed_.empty()) {
        if (stopping_) {
          return;
        }
      } else {
        next = delayed_.front();
        if (next.first <= absl::Now()) {
          delayed_.pop_front();
        } else {
          next.second = nullptr;
        }
      }
    }
    if (next.second == nullptr) {
      absl::SleepFor(absl::Milliseconds(1));
      continue;
    }
    next.second->Finish(options_.refuse == grpc::StatusCode::OK
                            ? grpc::Status::OK
                            : grpc::Status(options_.refuse, "refused by the echo server"));
  }
}

grpc::ServerUnaryReactor* EchoAgentService::Enroll(grpc::CallbackServerContext* ctx,
                                                   const v1::EnrollRequest* request,
                                                   v1::EnrollResponse* response) {
  response->set_agent_token("echo-" + request->agent_id());
  response->set_ring("broad");
  return Answer(ctx);
}

grpc::ServerUnaryReactor* EchoAgentService::GetAssignment(grpc::CallbackServerContext* ctx,
                                                          const v1::GetAssignmentRequest* request,
                                                          v1::GetAssignmentResponse* response) {
  if (options_.record) {
    absl::MutexLock lock(&record_mu_);
    pollers_.insert(request->agent_id());
    polls_naming_held_ += request->has_held() ? 1 : 0;
    const auto& metadata = ctx->client_metadata();
    auto auth = metadata.find("authorization");
    const std::string header =
        auth == metadata.end() ? "" : std::string(auth->second.data(), auth->second.size());
    polls_with_credential_ += header == "Bearer echo-" + request->agent_id() ? 1 : 0;
    polls_with_bearer_ += absl::StartsWith(header, "Bearer ") ? 1 : 0;
    // gRPC names a peer by its verified certificate's subject alternative names.
    const std::string spiffe_id = AgentSpiffeId(request->agent_id());
    for (const grpc::string_ref& name : ctx->auth_context()->GetPeerIdentity()) {
      if (std::string(name.data(), name.size()) == spiffe_id) {
        ++polls_with_own_certificate_;
        break;
      }
    }
  }
  *response = reply_;
  return Answer(ctx);
}

size_t EchoAgentService::distinct_pollers() const {
  absl::MutexLock lock(&record_mu_);
  return pollers_.size();
}

int64_t EchoAgentService::polls_with_bearer() const {
  absl::MutexLock lock(&record_mu_);
  return polls_with_bearer_;
}

int64_t EchoAgentService::polls_naming_held() const {
  absl::MutexLock lock(&record_mu_);
  return polls_naming_held_;
}

int64_t EchoAgentService::polls_with_own_certificate() const {
  absl::MutexLock lock(&record_mu_);
  return polls_with_own_certificate_;
}

int64_t EchoAgentService::polls_with_credential() const {
  absl::MutexLock lock(&record_mu_);
  return polls_with_credential_;
}

grpc::ServerUnaryReactor* EchoAgentService::ReportTelemetry(
    grpc::CallbackServerContext* ctx, const v1::ReportTelemetryRequest* request,
    v1::ReportTelemetryResponse* response) {
  response->set_accepted(request->events_size());
  return Answer(ctx);
}

LocalEcho::LocalEcho(EchoOptions options) : service(options) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  server = builder.BuildAndStart();
}

LocalEcho::~LocalEcho() {
  if (server != nullptr) {
    server->Shutdown();
  }
}

}  // namespace ringwarden::agent

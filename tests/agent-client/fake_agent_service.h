// fake_agent_service.h: an in-process AgentService for agent-client tests.
//
//   TestTrust trust = MakeTestTrust(release_key);        // keys and a v1 root
//   server.service().SetTrust(trust.server_key, 1);      // sign every answer
//   server.service().Serve("*", SignContent(release_key, "rules.x", 2, "bytes"));
//
// Canned assignments per ring, signed per poll as the real server does (an
// AssignmentStatement in a DSSE envelope with a growing sequence), content
// signed in the test, root updates and floors to hand out, and switches to make
// the server misbehave: broken streams (truncated, gapped, held open, longer
// than announced), failed calls, and lying answers (Misbehavior: unsigned,
// another agent or ring, expired, signed by another key, replayed). Records
// what agents sent and every statement it signed. FakeServer runs it on
// 127.0.0.1:0. Thread-safety: all methods are safe from any thread (gRPC calls
// them from its own).
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/ed25519.h"
#include "common/trust/trust.h"
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
  // After this many messages, send nothing more and keep the stream open until
  // the client cancels it (a stalled server); -1: never.
  int hold_after_chunks = -1;
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

// TestTrust is a root of trust for tests: one key per role, threshold 1.
struct TestTrust {
  Ed25519PrivateKey root_key;
  Ed25519PrivateKey release_key;
  Ed25519PrivateKey server_key;
  std::string root_json;  // version 1, signed by root_key
  Root root;              // root_json, verified
};

// TestRootSpec names `root_key`, `release_key` and `server_key` (threshold 1
// each) as root `version`, expiring ten years from the real clock's now.
RootSpec TestRootSpec(const Ed25519PrivateKey& root_key, const Ed25519PrivateKey& release_key,
                      const Ed25519PrivateKey& server_key, int64_t version);
// SignRoot encodes `spec` and signs it with every key of `signers`.
std::string SignRoot(const RootSpec& spec, const std::vector<const Ed25519PrivateKey*>& signers);
// MakeTestTrust makes fresh root and server keys and a version-1 root naming
// them and `release_key`.
TestTrust MakeTestTrust(const Ed25519PrivateKey& release_key);
// SignFloor signs a floor of `channel` at `min_version` with `key`.
std::string SignFloor(const Ed25519PrivateKey& key, const std::string& channel,
                      int64_t min_version);

// Misbehavior makes the signed answers lie; every field's default is honest.
struct Misbehavior {
  bool unsigned_answer = false;  // no signed_assignment at all
  std::string agent_id;          // sign for this agent id instead of the caller's
  std::string ring;              // sign this ring instead of the caller's
  absl::Duration issued_offset = absl::ZeroDuration();  // issued = now + offset
  std::optional<absl::Duration> ttl;                    // expires = issued + ttl
  std::optional<Ed25519PrivateKey> signing_key;         // instead of the server key
  std::string replay;  // answer with this signed_assignment verbatim
  // Answer that the held statement is current (nothing signed), whatever the poll named.
  bool claim_held_current = false;
  // What the unsigned display fields say, instead of what is signed.
  std::optional<std::vector<v1::ChannelAssignment>> unsigned_assignments;
};

class FakeAgentService final : public v1::AgentService::CallbackService {
 public:
  static constexpr char kSecret[] = "test-secret";

  // SetTrust signs every later answer with `server_key` under `root_version`.
  // Without it answers carry no signed assignment.
  void SetTrust(const Ed25519PrivateKey& server_key, int64_t root_version);
  // SetClock sets the clock of issue times (default: the real clock); it must
  // outlive the service's use.
  void SetClock(const Clock* clock);
  // SetAssignmentTtl sets how long signed assignments are valid (default 1 h).
  void SetAssignmentTtl(absl::Duration ttl);
  // SetRootUpdates and SetFloors set what every answer carries.
  void SetRootUpdates(std::vector<std::string> root_updates);
  void SetFloors(std::vector<std::string> floors);
  // SetMisbehavior makes answers to `agent_id` ("*": everyone without their
  // own) lie as `misbehavior` says; ClearMisbehavior makes them honest again.
  void SetMisbehavior(Misbehavior misbehavior, const std::string& agent_id = "*");
  void ClearMisbehavior();
  // SetHonourHeld makes honest answers say that the statement a poll names as
  // held is current, signing nothing, when it states what would be signed now
  // and is not past half its lifetime (as the server does). Off by default.
  void SetHonourHeld(bool honour);
  // HeldNamed returns the `held` of each poll of `agent_id`, in order (empty
  // entries: the poll named none).
  std::vector<std::optional<v1::HeldAssignment>> HeldNamed(const std::string& agent_id) const;
  // SignNow returns the signed assignment `agent_id` would get now (an answer
  // recorded on its way, never delivered); it takes a sequence number.
  std::string SignNow(const std::string& agent_id);
  // SignedAssignments returns every signed assignment sent to `agent_id`.
  std::vector<std::string> SignedAssignments(const std::string& agent_id) const;
  // LastRootVersion is the root_version of `agent_id`'s latest poll (-1: none).
  int64_t LastRootVersion(const std::string& agent_id) const;

  // SetAssignments sets what agents of `ring` get ("*": every ring without its own).
  void SetAssignments(const std::string& ring, std::vector<v1::ChannelAssignment> assignments);
  void SetEmergencyStop(bool stop);
  void SetNextPollMs(int64_t ms);
  // SetAnswerDelay makes every GetAssignment take `delay` before it answers (a slow server).
  void SetAnswerDelay(absl::Duration delay);
  void AddContent(const std::string& channel, int64_t version, ServedContent content);
  // Serve installs `content` and assigns it to `ring`.
  void Serve(const std::string& ring, const SignedContent& content);
  // FailNext makes the next `n` calls of `method` ("GetAssignment", "ReportTelemetry",
  // "FetchContent", "Enroll") fail with `code`.
  void FailNext(const std::string& method, int n, grpc::StatusCode code);
  // SetRetryAfterMs makes injected failures carry the server's retry hint
  // (trailing "retry-after-ms"); 0: none.
  void SetRetryAfterMs(int64_t ms);
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
  bool Injected(const std::string& method, grpc::CallbackServerContext* ctx, grpc::Status* status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<v1::TelemetryEvent> AcceptedEvents(const std::string& agent_id) const;
  // Statement builds the statement for `agent_id` in `ring` as `m` says, with
  // sequence 0 and issued now; Sign numbers and signs it.
  Assignment Statement(const std::string& agent_id, const std::string& ring,
                       const std::vector<v1::ChannelAssignment>& assignments, const Misbehavior& m)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string Sign(const std::string& agent_id, const std::string& ring,
                   const std::vector<v1::ChannelAssignment>& assignments, const Misbehavior& m)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<v1::ChannelAssignment> AssignmentsOf(const std::string& ring) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Misbehavior MisbehaviorOf(const std::string& agent_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, std::vector<v1::ChannelAssignment>> assignments_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, int64_t>, ServedContent> content_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> tokens_ ABSL_GUARDED_BY(mu_);  // agent id -> token
  std::map<std::string, std::string> rings_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> last_seq_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::pair<int, grpc::StatusCode>> failures_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> calls_ ABSL_GUARDED_BY(mu_);
  int64_t retry_after_ms_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<TelemetryCall> telemetry_ ABSL_GUARDED_BY(mu_);
  bool emergency_stop_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<Ed25519PrivateKey> server_key_ ABSL_GUARDED_BY(mu_);
  int64_t root_version_ ABSL_GUARDED_BY(mu_) = 0;
  const Clock* clock_ ABSL_GUARDED_BY(mu_) = &RealClock::Instance();
  absl::Duration ttl_ ABSL_GUARDED_BY(mu_) = absl::Hours(1);
  int64_t sequence_ ABSL_GUARDED_BY(mu_) = 0;  // one counter: grows for every agent
  std::vector<std::string> root_updates_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> floors_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Misbehavior> misbehavior_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<std::string>> signed_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> root_versions_ ABSL_GUARDED_BY(mu_);
  bool honour_held_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::vector<std::optional<v1::HeldAssignment>>> held_named_
      ABSL_GUARDED_BY(mu_);
  int64_t next_poll_ms_ ABSL_GUARDED_BY(mu_) = 1000;
  absl::Duration answer_delay_ ABSL_GUARDED_BY(mu_);
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

// agent_client.h: thin client of ringwarden.v1.AgentService with our own types.
//
//   auto conn = AgentConnection::Create("server:7443");   // one per process (or a few)
//   AgentClient client(conn);
//   ASSIGN_OR_RETURN(EnrollResult e, client.Enroll("host-1", labels, token, "host-1", &key));
//   ASSIGN_OR_RETURN(PollAnswer a, client.GetAssignment(current, {"rules.behavioral"}, 1));
//   ASSIGN_OR_RETURN(FetchedContent c, client.FetchContent("rules.behavioral", 7, check));
//
// An AgentConnection (one gRPC channel plus its stub) is shared by any number of
// clients; every call has a deadline and gRPC statuses come back as absl::Status
// with the same code and message. The client only moves bytes: what the answers
// mean (signatures, assignments) is the Agent's business, except that a download
// is never kept before the caller's EnvelopeCheck accepted its envelope and never
// grows past the size that check returns. Thread-safety: AgentConnection and
// AgentClient are safe to use from several threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent-client/types.h"
#include "common/pki.h"

namespace grpc {
class Channel;
class ClientContext;
class Status;
}  // namespace grpc

namespace ringwarden::agent {

// FromGrpcStatus maps a gRPC status to absl::Status with the same code and message.
absl::Status FromGrpcStatus(const grpc::Status& status);

// RetryAfter is how long the server asked the caller to wait before calling
// again (its "retry-after-ms" hint on a refusal, at most 15 minutes); zero
// when the status carries none.
absl::Duration RetryAfter(const absl::Status& status);

struct ConnectionOptions {
  // HTTP/2 keepalive pings while calls are active, so a dead server is noticed
  // before a call deadline rather than after a TCP timeout.
  absl::Duration keepalive_time = absl::Seconds(30);
  absl::Duration keepalive_timeout = absl::Seconds(10);
  // Give this connection its own TCP connection. gRPC otherwise shares one
  // subchannel among channels with equal arguments, which would defeat the
  // fleet's spreading of agents over several connections.
  bool own_connection = false;
  // Largest message accepted from the server (a content chunk plus envelope).
  int max_receive_message_bytes = 8 << 20;
  // TLS: the CA bundle (PEM) that verifies the server; empty means plaintext,
  // which only a server started with --insecure speaks.
  std::string server_ca_pem;
  // The agent's client certificate and key (PEM), once enrolled.
  std::string client_key_pem;
  std::string client_cert_pem;
};

// AgentConnection is one gRPC channel to the server and its AgentService stub.
class AgentConnection {
 public:
  // Create opens a channel to "host:port" (connection is lazy): TLS when
  // options.server_ca_pem is set, else plaintext.
  static std::shared_ptr<AgentConnection> Create(const std::string& address,
                                                 const ConnectionOptions& options = {});
  // FromChannel wraps an existing channel (tests, or credentials made elsewhere).
  static std::shared_ptr<AgentConnection> FromChannel(std::shared_ptr<grpc::Channel> channel);

  ~AgentConnection();
  AgentConnection(const AgentConnection&) = delete;
  AgentConnection& operator=(const AgentConnection&) = delete;

  struct Impl;

 private:
  friend class AgentClient;
  explicit AgentConnection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct AgentClientOptions {
  // Deadline of Enroll, GetAssignment and ReportTelemetry.
  absl::Duration call_timeout = absl::Seconds(15);
  // Deadline of a whole FetchContent download.
  absl::Duration fetch_timeout = absl::Minutes(2);
  // Largest payload FetchContent accepts; larger content is refused unread.
  int64_t max_content_bytes = int64_t{16} << 20;
  // Minimum download rate: once fetch_grace has passed since the download
  // began, receiving fewer than min_fetch_bytes_per_second over the last
  // fetch_rate_window (or since the start, when shorter) ends it as stalled.
  int64_t min_fetch_bytes_per_second = 1024;
  absl::Duration fetch_rate_window = absl::Seconds(30);
  absl::Duration fetch_grace = absl::Seconds(10);
};

// ValidateAgentClientOptions: INVALID_ARGUMENT naming the first option out of
// range (timeouts and the rate window > 0, grace >= 0, sizes and rate >= 1).
absl::Status ValidateAgentClientOptions(const AgentClientOptions& options);

// EnrollResult is what Enroll and RenewCredential return.
struct EnrollResult {
  AgentCredential credential;
  std::string ring;
};

// ChannelAssignment is what one channel should run (see agent.proto).
struct ChannelAssignment {
  std::string channel;
  int64_t version = 0;  // 0: nothing available yet
  std::string sha256;   // lowercase hex of the payload
  int64_t size = 0;
  bool rollback = false;  // only then may a lower version be accepted
  std::vector<int64_t> revoked_versions;
  std::string rollout_id;
};

// PollAnswer is the answer to a poll, as received: nothing in it is verified.
// An agent acts only on signed_assignment (after verifying it); ring,
// emergency_stop and channels are the unsigned display copy.
struct PollAnswer {
  std::string ring;
  absl::Duration next_poll = absl::ZeroDuration();
  bool emergency_stop = false;
  std::vector<ChannelAssignment> channels;
  // DSSE envelope (JSON) over an AssignmentStatement; empty when the server sent none.
  std::string signed_assignment;
  // The server says the statement the poll named as held states this answer and is
  // not past half its lifetime; signed_assignment is then empty.
  bool held_current = false;
  // Root envelopes (JSON) newer than the root version the poll sent, in version order.
  std::vector<std::string> root_updates;
  // Release-signed floor envelopes (JSON) of the assigned channels.
  std::vector<std::string> floors;
};

// HeldStatement names the signed assignment an agent holds, by its terms and the
// SHA-256 of its payload, so that the server can answer that it is still current
// instead of signing it again.
struct HeldStatement {
  int64_t sequence = 0;
  absl::Time issued;
  absl::Time expires;
  std::string payload_sha256;
};

// EnvelopeCheck verifies a download's envelope (JSON, from the first message)
// before any payload byte is kept, and returns the signed payload size that
// caps the download. An error ends the download with that status.
using EnvelopeCheck = std::function<absl::StatusOr<int64_t>(absl::string_view envelope_json)>;

// FetchedContent is one channel version as downloaded: the envelope the
// EnvelopeCheck accepted and exactly as many payload bytes as it signed
// (their digest is not checked here).
struct FetchedContent {
  std::string envelope_json;
  std::string payload;
};

// TelemetryAck is the server's answer to a batch.
struct TelemetryAck {
  int accepted = 0;
  bool duplicate = false;
};

// AgentClient speaks AgentService for one agent identity. Enroll and
// RenewCredential install the credential they return: over TLS the client
// certificate (on a connection of its own), else a bearer token sent as
// "authorization: Bearer <token>".
class AgentClient {
 public:
  // Calls share `connection`; a client certificate cannot be used (tests,
  // and the simulator's plaintext fleets).
  explicit AgentClient(std::shared_ptr<AgentConnection> connection,
                       AgentClientOptions options = {});
  // Connects to `address` itself, so that an enrolled client certificate gets
  // a connection of its own.
  AgentClient(std::string address, ConnectionOptions connection_options,
              AgentClientOptions options = {});

  // tls reports whether the client verifies the server with a CA (and so
  // must enroll with a CSR).
  bool tls() const;

  // Enroll registers `agent_id` with an enrollment token; `key` (required
  // over TLS) is the agent's fresh key and CSR. Re-enrolling an id already
  // held goes over that id's current credential.
  absl::StatusOr<EnrollResult> Enroll(const std::string& agent_id,
                                      const std::map<std::string, std::string>& labels,
                                      const std::string& enrollment_token,
                                      const std::string& hostname,
                                      const AgentKeyRequest* key = nullptr);
  // RenewCredential trades the current credential for a fresh one (`key`: a
  // new key and CSR, required over TLS).
  absl::StatusOr<EnrollResult> RenewCredential(const AgentKeyRequest* key = nullptr);

  // GetAssignment polls with the versions in effect, the subscribed channels
  // (empty: every channel), the version of the root the agent trusts (the
  // answer carries newer roots) and the statement it holds, if any.
  // FAILED_PRECONDITION before Enroll.
  absl::StatusOr<PollAnswer> GetAssignment(const std::vector<ChannelVersion>& current,
                                           const std::vector<std::string>& channels,
                                           int64_t root_version = 0,
                                           const HeldStatement* held = nullptr);

  // FetchContent downloads one version. The first message's envelope goes to
  // `check` before any payload byte is kept; the download is then capped at
  // the size `check` returns (the signed size). The call is cancelled, never
  // read to its end, at the first violation:
  //   FAILED_PRECONDITION: announced or signed size above max_content_bytes,
  //     envelope above kMaxEnvelopeJsonBytes;
  //   whatever `check` returned, when it refused the envelope;
  //   DATA_LOSS: an announced total_size other than the signed size, a chunk
  //     that is not contiguous, the first byte beyond the signed size, a stream
  //     that ends short or empty, fewer bytes than the minimum rate allows (a
  //     stalled stream), or a download still unfinished at fetch_timeout.
  absl::StatusOr<FetchedContent> FetchContent(const std::string& channel, int64_t version,
                                              const EnvelopeCheck& check);

  // ReportTelemetry sends one batch; resending a failed batch must reuse its seq.
  absl::StatusOr<TelemetryAck> ReportTelemetry(int64_t batch_seq,
                                               const std::vector<TelemetryEvent>& events);

  // SetCredential installs a credential kept from an earlier run.
  void SetCredential(AgentCredential credential);
  void ClearCredential();
  // SetIdentity installs a bearer token enrolled elsewhere (empty: clears it).
  void SetIdentity(std::string agent_id, std::string token);
  bool enrolled() const;
  AgentCredential credential() const;

  const AgentClientOptions& options() const { return options_; }

 private:
  struct Identity {
    std::string agent_id;
    std::string token;
    std::shared_ptr<AgentConnection> connection;
  };
  absl::StatusOr<Identity> GetIdentity() const;
  static void AddCredential(grpc::ClientContext& ctx, const Identity& id);

  const std::string address_;  // empty when given a shared connection
  const ConnectionOptions connection_options_;
  const std::shared_ptr<AgentConnection> base_connection_;  // no client certificate
  const AgentClientOptions options_;
  mutable absl::Mutex mu_;
  AgentCredential credential_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<AgentConnection> connection_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ringwarden::agent

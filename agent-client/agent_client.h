// agent_client.h: thin client of ringwarden.v1.AgentService with our own types.
//
//   auto conn = AgentConnection::Create("server:7443");   // one per process (or a few)
//   AgentClient client(conn);
//   ASSIGN_OR_RETURN(EnrollResult e, client.Enroll("host-1", labels, secret, "host-1"));
//   ASSIGN_OR_RETURN(Assignment a, client.GetAssignment(current, {"rules.behavioral"}));
//
// An AgentConnection (one gRPC channel plus its stub) is shared by any number of
// clients; every call has a deadline and gRPC statuses come back as absl::Status
// with the same code and message. Thread-safety: AgentConnection and AgentClient
// are safe to use from several threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent-client/types.h"

namespace grpc {
class Channel;
class Status;
}  // namespace grpc

namespace ringwarden::agent {

// FromGrpcStatus maps a gRPC status to absl::Status with the same code and message.
absl::Status FromGrpcStatus(const grpc::Status& status);

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
};

// AgentConnection is one gRPC channel to the server and its AgentService stub.
class AgentConnection {
 public:
  // Create opens an insecure channel to "host:port" (connection is lazy).
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
  // Deadline of a whole FetchContent stream.
  absl::Duration fetch_timeout = absl::Minutes(2);
  // Largest payload FetchContent accepts; larger content is refused unread.
  int64_t max_content_bytes = int64_t{16} << 20;
};

// EnrollResult is what Enroll returns.
struct EnrollResult {
  std::string token;
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

// Assignment is the answer to a poll.
struct Assignment {
  std::string ring;
  absl::Duration next_poll = absl::ZeroDuration();
  bool emergency_stop = false;
  std::vector<ChannelAssignment> channels;
};

// FetchedContent is one channel version as downloaded: the DSSE envelope (JSON)
// and the payload, both unverified.
struct FetchedContent {
  std::string envelope_json;
  std::string payload;
};

// TelemetryAck is the server's answer to a batch.
struct TelemetryAck {
  int accepted = 0;
  bool duplicate = false;
};

// AgentClient speaks AgentService for one agent identity. Enroll stores the
// agent id and token; the other calls send "authorization: Bearer <token>".
class AgentClient {
 public:
  explicit AgentClient(std::shared_ptr<AgentConnection> connection,
                       AgentClientOptions options = {});

  // Enroll registers `agent_id` and remembers it with the returned token.
  absl::StatusOr<EnrollResult> Enroll(const std::string& agent_id,
                                      const std::map<std::string, std::string>& labels,
                                      const std::string& enrollment_secret,
                                      const std::string& hostname);

  // GetAssignment polls with the versions in effect and subscribed channels
  // (empty: every channel). FAILED_PRECONDITION before Enroll.
  absl::StatusOr<Assignment> GetAssignment(const std::vector<ChannelVersion>& current,
                                           const std::vector<std::string>& channels);

  // FetchContent downloads one version. DATA_LOSS when the stream is empty,
  // truncated, not contiguous or longer than announced; FAILED_PRECONDITION
  // when the announced size exceeds max_content_bytes or the envelope exceeds
  // kMaxEnvelopeJsonBytes (the stream is cancelled, not read).
  absl::StatusOr<FetchedContent> FetchContent(const std::string& channel, int64_t version);

  // ReportTelemetry sends one batch; resending a failed batch must reuse its seq.
  absl::StatusOr<TelemetryAck> ReportTelemetry(int64_t batch_seq,
                                               const std::vector<TelemetryEvent>& events);

  // SetIdentity installs an identity enrolled elsewhere (or clears it).
  void SetIdentity(std::string agent_id, std::string token);
  bool enrolled() const;

  const AgentClientOptions& options() const { return options_; }

 private:
  struct Identity {
    std::string agent_id;
    std::string token;
  };
  absl::StatusOr<Identity> GetIdentity() const;

  const std::shared_ptr<AgentConnection> connection_;
  const AgentClientOptions options_;
  mutable absl::Mutex mu_;
  std::string agent_id_ ABSL_GUARDED_BY(mu_);
  std::string token_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ringwarden::agent

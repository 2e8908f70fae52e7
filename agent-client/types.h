// types.h: plain value types shared by the agent-client library (client, store, agent).
//
// They mirror the ringwarden.v1 AgentService messages so that the public API of
// the library never exposes generated protobuf types. Values only; no behaviour
// beyond trivial helpers. Thread-safety: plain structs, copy them freely.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/time/time.h"
#include "common/outcomes.h"

namespace ringwarden::agent {

// ChannelVersion is a version of one channel in effect on an agent; 0 means none.
struct ChannelVersion {
  std::string channel;
  int64_t version = 0;

  friend bool operator==(const ChannelVersion& a, const ChannelVersion& b) {
    return a.channel == b.channel && a.version == b.version;
  }
  friend bool operator!=(const ChannelVersion& a, const ChannelVersion& b) { return !(a == b); }
};

// ApplyOutcome and CrashKind are the one spelling in common/outcomes.h (same
// numbering as ringwarden.v1.ApplyOutcome and CrashKind).
using ::ringwarden::ApplyOutcome;
using ::ringwarden::CrashKind;

// Heartbeat says the agent is alive and what it runs.
struct Heartbeat {
  std::vector<ChannelVersion> versions;
  int64_t uptime_seconds = 0;
  std::string boot_id;
};

// ApplyReport is the outcome of trying to apply (or reverting to) one version.
struct ApplyReport {
  std::string channel;
  int64_t version = 0;
  ApplyOutcome outcome = ApplyOutcome::kUnspecified;
  std::string detail;
};

// CrashReport carries the versions in effect when the crash happened.
struct CrashReport {
  CrashKind kind = CrashKind::kUnspecified;
  std::vector<ChannelVersion> versions;
  std::string detail;
};

// HealthEvent is a free-form health signal, e.g. "state_repaired".
struct HealthEvent {
  std::string kind;
  std::string detail;
  std::vector<ChannelVersion> versions;
};

// TelemetryEvent is one event of a ReportTelemetry batch.
struct TelemetryEvent {
  absl::Time observed;
  std::variant<Heartbeat, ApplyReport, CrashReport, HealthEvent> event;
};

// AgentCredential is what proves an agent's identity: a client certificate
// and its key (TLS), or a bearer token (a server started with --insecure).
struct AgentCredential {
  std::string agent_id;
  std::string token;
  std::string key_pem;
  std::string cert_pem;  // the certificate, then the agent CA
  absl::Time expires = absl::InfinitePast();
};

}  // namespace ringwarden::agent

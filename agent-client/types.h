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

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

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

// ApplyOutcome mirrors ringwarden.v1.ApplyOutcome (same numbering).
enum class ApplyOutcome {
  kUnspecified = 0,
  kApplied = 1,
  kSignatureRejected = 2,
  kDigestMismatch = 3,
  kApplyFailed = 4,
  kLoadCheckFailed = 5,
  kReverted = 6,
};

// ApplyOutcomeName returns the proto enum name, e.g. "APPLY_OUTCOME_APPLIED".
absl::string_view ApplyOutcomeName(ApplyOutcome outcome);

// CrashKind mirrors ringwarden.v1.CrashKind (same numbering).
enum class CrashKind {
  kUnspecified = 0,
  kProcessCrash = 1,
  kUncleanShutdown = 2,
};

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

}  // namespace ringwarden::agent

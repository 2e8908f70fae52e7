// outcomes.h: the words agents report, one enum each with one Name/Parse pair.
//
// ApplyOutcome and CrashKind cross every layer: the agent sets them, the wire
// carries them (same numbering as ringwarden.v1.ApplyOutcome and CrashKind),
// storage keeps their names, and the health ledger judges them. Every layer
// spells them through these functions, never as its own string literals.
//
//   ASSIGN_OR_RETURN(ApplyOutcome o, ParseApplyOutcome("LOAD_CHECK_FAILED"));
//   ApplyOutcomeName(o);  // "LOAD_CHECK_FAILED"
//
// Pure functions; thread-safe.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ringwarden {

// ApplyOutcome is what an agent reported after trying to apply one version.
enum class ApplyOutcome {
  kUnspecified = 0,
  kApplied = 1,            // written and loaded
  kSignatureRejected = 2,  // refused before applying: the version never ran
  kDigestMismatch = 3,     // refused before applying: bytes differ from the signed manifest
  kApplyFailed = 4,        // could not be written or activated
  kLoadCheckFailed = 5,    // written, the load check failed, the agent went back
  kReverted = 6,           // applied, then reverted on its own (boot-loop breaker)
};

// ApplyOutcomeName returns the stored name, e.g. "APPLIED", "LOAD_CHECK_FAILED";
// "UNSPECIFIED" for kUnspecified.
absl::string_view ApplyOutcomeName(ApplyOutcome outcome);
// ParseApplyOutcome is the inverse of ApplyOutcomeName for every outcome but
// kUnspecified; INVALID_ARGUMENT otherwise.
absl::StatusOr<ApplyOutcome> ParseApplyOutcome(absl::string_view name);
// ApplyOutcomeFromWire maps the wire number; INVALID_ARGUMENT for 0 and unknown numbers.
absl::StatusOr<ApplyOutcome> ApplyOutcomeFromWire(int number);
// IsRefusal reports outcomes where the version never ran (signature or digest refused).
bool IsRefusal(ApplyOutcome outcome);

// CrashKind is how an agent learned of a crash.
enum class CrashKind {
  kUnspecified = 0,
  kProcessCrash = 1,     // the sensor process died
  kUncleanShutdown = 2,  // found at next boot: the machine went down without a clean stop
};

// CrashKindName returns "PROCESS_CRASH" or "UNCLEAN_SHUTDOWN" ("UNSPECIFIED" for kUnspecified).
absl::string_view CrashKindName(CrashKind kind);
// ParseCrashKind is the inverse of CrashKindName but for kUnspecified; INVALID_ARGUMENT otherwise.
absl::StatusOr<CrashKind> ParseCrashKind(absl::string_view name);
// CrashKindFromWire maps the wire number; INVALID_ARGUMENT for 0 and unknown numbers.
absl::StatusOr<CrashKind> CrashKindFromWire(int number);

}  // namespace ringwarden

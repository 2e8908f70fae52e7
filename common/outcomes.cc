#include "common/outcomes.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace ringwarden {
namespace {

constexpr ApplyOutcome kKnownOutcomes[] = {
    ApplyOutcome::kApplied,     ApplyOutcome::kSignatureRejected, ApplyOutcome::kDigestMismatch,
    ApplyOutcome::kApplyFailed, ApplyOutcome::kLoadCheckFailed,   ApplyOutcome::kReverted,
};
constexpr CrashKind kKnownCrashKinds[] = {CrashKind::kProcessCrash, CrashKind::kUncleanShutdown};

}  // namespace

absl::string_view ApplyOutcomeName(ApplyOutcome outcome) {
  switch (outcome) {
    case ApplyOutcome::kUnspecified:
      return "UNSPECIFIED";
    case ApplyOutcome::kApplied:
      return "APPLIED";
    case ApplyOutcome::kSignatureRejected:
      return "SIGNATURE_REJECTED";
    case ApplyOutcome::kDigestMismatch:
      return "DIGEST_MISMATCH";
    case ApplyOutcome::kApplyFailed:
      return "APPLY_FAILED";
    case ApplyOutcome::kLoadCheckFailed:
      return "LOAD_CHECK_FAILED";
    case ApplyOutcome::kReverted:
      return "REVERTED";
  }
  return "UNSPECIFIED";
}

absl::StatusOr<ApplyOutcome> ParseApplyOutcome(absl::string_view name) {
  for (ApplyOutcome o : kKnownOutcomes) {
    if (ApplyOutcomeName(o) == name) {
      return o;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown apply outcome \"", absl::CHexEscape(name.substr(0, 64)), "\""));
}

absl::StatusOr<ApplyOutcome> ApplyOutcomeFromWire(int number) {
  for (ApplyOutcome o : kKnownOutcomes) {
    if (static_cast<int>(o) == number) {
      return o;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("apply outcome ", number, " is not known"));
}

bool IsRefusal(ApplyOutcome outcome) {
  return outcome == ApplyOutcome::kSignatureRejected || outcome == ApplyOutcome::kDigestMismatch;
}

absl::string_view CrashKindName(CrashKind kind) {
  switch (kind) {
    case CrashKind::kUnspecified:
      return "UNSPECIFIED";
    case CrashKind::kProcessCrash:
      return "PROCESS_CRASH";
    case CrashKind::kUncleanShutdown:
      return "UNCLEAN_SHUTDOWN";
  }
  return "UNSPECIFIED";
}

absl::StatusOr<CrashKind> ParseCrashKind(absl::string_view name) {
  for (CrashKind k : kKnownCrashKinds) {
    if (CrashKindName(k) == name) {
      return k;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown crash kind \"", absl::CHexEscape(name.substr(0, 64)), "\""));
}

absl::StatusOr<CrashKind> CrashKindFromWire(int number) {
  for (CrashKind k : kKnownCrashKinds) {
    if (static_cast<int>(k) == number) {
      return k;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("crash kind ", number, " is not known"));
}

}  // namespace ringwarden

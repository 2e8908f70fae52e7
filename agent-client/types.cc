#include "agent-client/types.h"

namespace ringwarden::agent {

absl::string_view ApplyOutcomeName(ApplyOutcome outcome) {
  switch (outcome) {
    case ApplyOutcome::kUnspecified:
      return "APPLY_OUTCOME_UNSPECIFIED";
    case ApplyOutcome::kApplied:
      return "APPLY_OUTCOME_APPLIED";
    case ApplyOutcome::kSignatureRejected:
      return "APPLY_OUTCOME_SIGNATURE_REJECTED";
    case ApplyOutcome::kDigestMismatch:
      return "APPLY_OUTCOME_DIGEST_MISMATCH";
    case ApplyOutcome::kApplyFailed:
      return "APPLY_OUTCOME_APPLY_FAILED";
    case ApplyOutcome::kLoadCheckFailed:
      return "APPLY_OUTCOME_LOAD_CHECK_FAILED";
    case ApplyOutcome::kReverted:
      return "APPLY_OUTCOME_REVERTED";
  }
  return "APPLY_OUTCOME_UNKNOWN";
}

}  // namespace ringwarden::agent

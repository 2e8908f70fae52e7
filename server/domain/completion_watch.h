// completion_watch.h: the post-completion watch window.
//
// A version can pass every gate and still fail late: a weekly scan, a reboot for patches, a
// rarely used code path. So the promotion that would complete a rollout waits until the last
// host that took the version has run it for the policy's watch_after_completion, and every ring
// is judged on every evaluation until then; a late failure anywhere halts or rolls back.
//
//   if (plan.to.state == RolloutState::kCompleted) {
//     HoldForCompletionWatch(policy.watch_after_completion, last_apply, now, decision);
//   }
//
// Pure; thread-safe.
#pragma once

#include <optional>

#include "absl/time/time.h"
#include "server/domain/decision.h"

namespace ringwarden {

// HoldForCompletionWatch turns a promotion into a wait while `now` is earlier than `last_apply`
// + `watch`, naming the end of the watch in the evidence, e.g. "the post-completion watch:
// every ring is judged until 2026-12-04 14:03:10 UTC (1h after the last host took the
// version)". The gate stays passed. Halts, rollbacks and waits pass untouched, and so does a
// rollout no host took (`last_apply` empty). Returns whether it held.
bool HoldForCompletionWatch(absl::Duration watch, std::optional<absl::Time> last_apply,
                            absl::Time now, Decision& decision);

}  // namespace ringwarden

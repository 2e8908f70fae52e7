// controller.h: the loop that judges every active rollout and acts on it.
//
// On each period the leader (one replica, by PostgreSQL advisory lock) brings
// each active rollout's evidence up to date (health_tracker.h: loaded once,
// then only the agents whose rows changed), asks the decision engine, records the decision, and
// applies halt, rollback or promotion in one transaction with the evidence in the audit log. The
// change is conditional on the revision it judged, so the same evidence is never acted on twice,
// and a restart or a new leader resumes from the database. While an emergency stop is active no
// decision is taken. Thread-safety: RunOnce must not run concurrently with itself; Start() runs it
// on an owned thread that Stop() (and the destructor) joins.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/core/approvals.h"
#include "server/core/core_observer.h"
#include "server/core/health_feed.h"
#include "server/core/health_tracker.h"
#include "server/core/policy_cache.h"
#include "server/core/snapshot.h"
#include "server/domain/exposure.h"
#include "server/domain/health_ledger.h"
#include "server/storage/store.h"

namespace ringwarden {

struct ControllerOptions {
  absl::Duration period = absl::Seconds(5);
};

// The actor name automatic changes carry in the audit log.
inline constexpr char kControllerActor[] = "controller";

class Controller {
 public:
  // `is_leader` says whether this replica may act now. Under a two-person
  // rule a promotion into BROAD is not applied: the controller opens a request
  // at `approvals` once (as kControllerActor) and waits; without a desk it
  // only waits and reports an error. Every reference must outlive the controller.
  Controller(RolloutStore& rollouts, HealthSource& health, SnapshotHolder& snapshots,
             PolicyCache& policies, ControllerObserver& observer, const Clock& clock,
             std::function<absl::StatusOr<bool>()> is_leader, ControllerOptions options,
             ApprovalDesk* approvals = nullptr);
  ~Controller();

  void Start();
  void Stop();

  // RunOnce evaluates every active rollout once; returns how many it changed.
  absl::StatusOr<int> RunOnce();

 private:
  // Outcome is what judging one rollout changed.
  enum class Outcome { kNone, kTransition, kExposureGrew };
  // Judgement is one ring's decision with what the audit log and the decision table show.
  struct Judgement {
    Ring ring = Ring::kCanary;
    Decision decision;
    std::string explanation;
    nlohmann::json evidence;
    std::optional<absl::Time> first_apply;
  };
  // Evaluate judges one rollout: every ring reached in an earlier stage, then the stage ring
  // and its exposure budget; acts on the first stop, else on the stage's decision.
  absl::StatusOr<Outcome> Evaluate(const RolloutRecord& rollout, const AssignmentSnapshot& snapshot,
                                   absl::Time now);
  // Judge decides for `ring` from `ledger` over the window from `window_start`.
  Judgement Judge(const RolloutRecord& rollout, const RolloutPolicy& policy, HealthLedger& ledger,
                  Ring ring, absl::Time window_start, absl::Time now) const;
  // Record fills the judgement's explanation and evidence and stores it as the ring's decision.
  absl::Status Record(const RolloutRecord& rollout, const RolloutPolicy& policy, Judgement& j,
                      absl::Time window_start, TrackedHealth& tracked, absl::Time now,
                      const ExposurePlan* plan);
  // Act applies the action of a judgement (or opens its approval request).
  absl::StatusOr<Outcome> Act(const RolloutRecord& rollout, const RolloutPolicy& policy,
                              Judgement& j, RolloutAction action, absl::Time now);
  void Loop();

  RolloutStore& rollouts_;
  SnapshotHolder& snapshots_;
  PolicyCache& policies_;
  ControllerObserver& observer_;
  const Clock& clock_;
  std::function<absl::StatusOr<bool>()> is_leader_;
  const ControllerOptions options_;
  ApprovalDesk* const approvals_;
  HealthTracker tracker_;  // touched only by RunOnce
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace ringwarden

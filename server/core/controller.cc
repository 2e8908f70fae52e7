#include "server/core/controller.h"

#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/core/health_feed.h"
#include "server/core/policy_json.h"
#include "server/domain/completion_watch.h"
#include "server/domain/decision.h"
#include "server/domain/exposure.h"
#include "server/domain/transition.h"

namespace ringwarden {

Controller::Controller(RolloutStore& rollouts, HealthSource& health, SnapshotHolder& snapshots,
                       PolicyCache& policies, ControllerObserver& observer, const Clock& clock,
                       std::function<absl::StatusOr<bool>()> is_leader, ControllerOptions options,
                       ApprovalDesk* approvals)
    : rollouts_(rollouts),
      snapshots_(snapshots),
      policies_(policies),
      observer_(observer),
      clock_(clock),
      is_leader_(std::move(is_leader)),
      options_(options),
      approvals_(approvals),
      tracker_(health, clock) {}

Controller::~Controller() { Stop(); }

void Controller::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void Controller::Stop() {
  if (!stop_.HasBeenNotified()) {
    stop_.Notify();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
}

void Controller::Loop() {
  std::string last_error;
  while (!stop_.WaitForNotificationWithTimeout(options_.period)) {
    absl::StatusOr<int> result = RunOnce();
    if (!result.ok()) {
      // Decisions wait while the database is away; log each distinct error once.
      const std::string error = result.status().ToString();
      if (error != last_error) {
        std::cerr << "controller: " << error << std::endl;
        last_error = error;
      }
    } else {
      last_error.clear();
    }
  }
}

absl::StatusOr<int> Controller::RunOnce() {
  ASSIGN_OR_RETURN(bool leader, is_leader_());
  observer_.OnLeadership(leader);
  if (!leader) {
    tracker_.Clear();                // another replica judges; a new term loads everything again
    observer_.OnJudgedRollouts({});  // the leader publishes per-rollout series
    return 0;
  }
  // The feed is read even while nothing is judged, so it is trimmed and stays current.
  const absl::Time sync_start = clock_.Now();
  RETURN_IF_ERROR(tracker_.Sync());
  const HealthTrackerStats& done = tracker_.stats();
  observer_.OnHealthTracker(TrackerReport{done.full_loads, done.agents_reread,
                                          done.heartbeats_applied,
                                          static_cast<int64_t>(tracker_.tracked_rollouts()),
                                          clock_.Now() - sync_start, tracker_.held_back()});
  std::shared_ptr<const AssignmentSnapshot> snapshot = snapshots_.Current();
  if (snapshot == nullptr || snapshot->emergency_stop()) {
    return 0;
  }
  ASSIGN_OR_RETURN(std::vector<RolloutRecord> active, rollouts_.ListRollouts("", true, 1000));
  std::set<std::string> evaluated;
  for (const RolloutRecord& r : active) {
    if (IsStage(r.position.state)) {
      evaluated.insert(r.id);
    }
  }
  tracker_.Retain(evaluated);
  observer_.OnJudgedRollouts(evaluated);
  int changed = 0;
  bool grew = false;
  absl::Status first_error;
  for (const RolloutRecord& r : active) {
    absl::StatusOr<Outcome> outcome = Evaluate(r, *snapshot, clock_.Now());
    if (!outcome.ok()) {
      if (first_error.ok()) {
        first_error =
            absl::Status(outcome.status().code(),
                         absl::StrCat("rollout ", r.id, ": ", outcome.status().message()));
      }
      continue;
    }
    if (*outcome == Outcome::kTransition) {
      ++changed;
      // A halt must reach polls at once, not after the other rollouts are judged: every second
      // the old snapshot answers, more hosts may take the version for the first time.
      if (absl::Status refreshed = snapshots_.Refresh(); !refreshed.ok() && first_error.ok()) {
        first_error = refreshed;
      }
    }
    grew |= *outcome == Outcome::kExposureGrew;
  }
  if (grew) {
    RETURN_IF_ERROR(snapshots_.Refresh());
  }
  if (!first_error.ok()) {
    return first_error;
  }
  return changed;
}

Controller::Judgement Controller::Judge(const RolloutRecord& r, const RolloutPolicy& policy,
                                        HealthLedger& ledger, Ring ring, absl::Time window_start,
                                        absl::Time now) const {
  const RingGatePolicy& gate = policy.ForRing(ring);
  // Control: agents of the rings not reached yet, and of this ring while it is the stage ring,
  // still on the previous version over the same window.
  const std::optional<Ring> stage = StageRing(r.position.state);
  std::vector<Ring> control_rings;
  for (Ring c : kAllRings) {
    if (static_cast<int>(c) > static_cast<int>(*stage) || (c == ring && ring == *stage)) {
      control_rings.push_back(c);
    }
  }
  Judgement j;
  j.ring = ring;
  const RingHealth health =
      ledger.Summarize(ring, now, gate.silence_timeout, window_start,
                       control_rings.empty() ? std::vector<Ring>{ring} : control_rings);
  j.decision = ringwarden::Evaluate(gate, health, window_start, now);
  return j;
}

absl::StatusOr<Controller::Outcome> Controller::Evaluate(const RolloutRecord& r,
                                                         const AssignmentSnapshot& snapshot,
                                                         absl::Time now) {
  std::optional<Ring> ring = StageRing(r.position.state);
  if (!ring.has_value()) {
    return Outcome::kNone;  // PENDING, HALTED and final rollouts wait for a person
  }
  ASSIGN_OR_RETURN(RolloutPolicy policy, policies_.Get(r.policy_name, r.policy_version));
  const absl::Time window_start = r.stage_started_at;
  // Evidence from the rollout's creation: rings reached before this stage stay under watch.
  ASSIGN_OR_RETURN(TrackedHealth * tracked,
                   tracker_.Track(r, snapshot.pins(), policy.health_events));
  HealthLedger& ledger = tracked->stage;

  // Every ring that had the version in an earlier stage is judged again on everything since the
  // rollout began: a failure that shows late in canary halts the rollout in early or broad.
  std::optional<Judgement> verdict;
  if (*ring != Ring::kCanary) {
    HealthLedger& whole = tracker_.Whole(*tracked, r, policy.health_events);
    for (Ring earlier : kAllRings) {
      if (static_cast<int>(earlier) >= static_cast<int>(*ring)) {
        break;
      }
      Judgement j = Judge(r, policy, whole, earlier, r.created_at, now);
      if (j.decision.kind == Decision::Kind::kPromote) {
        // This ring passed its stage already; it is watched, not promoted again.
        j.decision.kind = Decision::Kind::kWait;
        j.decision.evidence.waiting_for.push_back("the rollout to finish (watched until then)");
      }
      const bool stops =
          j.decision.kind == Decision::Kind::kHalt || j.decision.kind == Decision::Kind::kRollback;
      RETURN_IF_ERROR(Record(r, policy, j, r.created_at, *tracked, now, nullptr));
      if (stops && !verdict.has_value()) {
        verdict = std::move(j);
      }
    }
  }
  Judgement stage = Judge(r, policy, ledger, *ring, window_start, now);
  const ExposurePlan plan =
      tracker_.Exposure(*tracked, r, policy, snapshot.ring_policy().seed, now);
  HoldForExposure(plan, stage.decision);
  if (stage.decision.kind == Decision::Kind::kPromote) {
    absl::StatusOr<TransitionPlan> next = PlanTransition(
        r.position, r.broad_wave, RolloutAction::kPromote, policy, Initiator::kController);
    if (next.ok() && next->to.state == RolloutState::kCompleted) {
      HoldForCompletionWatch(policy.watch_after_completion, tracker_.LastApply(*tracked), now,
                             stage.decision);
    }
  }
  RETURN_IF_ERROR(Record(r, policy, stage, window_start, *tracked, now, &plan));
  observer_.OnExposure(r, *ring, plan);
  const bool stage_stops = stage.decision.kind == Decision::Kind::kHalt ||
                           stage.decision.kind == Decision::Kind::kRollback;
  if (!verdict.has_value() || stage_stops) {
    verdict = std::move(stage);
  }

  const std::optional<RolloutAction> action = ActionForDecision(verdict->decision.kind);
  if (!action.has_value()) {
    if (plan.enabled && (plan.grew || plan.admitted != r.admitted_hosts)) {
      absl::Status stored =
          rollouts_.UpdateExposure(r.id, r.revision, plan.admitted_fraction, plan.admitted);
      if (absl::IsAborted(stored)) {
        return Outcome::kNone;  // moved since we read it: judge again next period
      }
      RETURN_IF_ERROR(stored);
      return plan.grew ? Outcome::kExposureGrew : Outcome::kNone;
    }
    return Outcome::kNone;
  }
  return Act(r, policy, *verdict, *action, now);
}

absl::Status Controller::Record(const RolloutRecord& r, const RolloutPolicy& policy, Judgement& j,
                                absl::Time window_start, TrackedHealth& tracked, absl::Time now,
                                const ExposurePlan* plan) {
  j.explanation = Explain(j.decision, j.ring, r.version);
  j.evidence = DecisionToJson(j.decision);
  j.evidence["ring"] = std::string(RingName(j.ring));
  j.evidence["policy"] = absl::StrCat(policy.name, " v", policy.version);
  j.evidence["explanation"] = j.explanation;
  j.evidence["evaluated_unix_ms"] = absl::ToUnixMillis(now);
  if (plan != nullptr) {
    j.evidence["exposure"] = ExposureToJson(*plan);
  }
  j.first_apply = tracker_.FirstApply(tracked, window_start);
  if (j.first_apply.has_value()) {
    j.evidence["first_apply_unix_ms"] = absl::ToUnixMillis(*j.first_apply);
    j.evidence["seconds_since_first_apply"] = absl::ToDoubleSeconds(now - *j.first_apply);
  }
  DecisionRecord record;
  record.rollout_id = r.id;
  record.ring = j.ring;
  record.kind = std::string(DecisionKindName(j.decision.kind));
  record.reason = std::string(DecisionReasonName(j.decision.reason));
  record.gate_passed = j.decision.gate_passed;
  record.summary = j.explanation;
  record.evidence_json = j.evidence.dump();
  record.evaluated_at = now;
  record.revision = r.revision;
  RETURN_IF_ERROR(rollouts_.UpsertDecision(record));
  const int64_t targeted = tracked.targeted[static_cast<int>(j.ring)];
  const RingGatePolicy& gate = policy.ForRing(j.ring);
  observer_.OnDecision(r, j.ring, targeted, j.decision, now - window_start, gate.min_bake);
  return absl::OkStatus();
}

absl::StatusOr<Controller::Outcome> Controller::Act(const RolloutRecord& r,
                                                    const RolloutPolicy& policy, Judgement& j,
                                                    RolloutAction action, absl::Time now) {
  RolloutChange change;
  change.rollout_id = r.id;
  change.expected_revision = r.revision;
  ASSIGN_OR_RETURN(change.plan, PlanTransition(r.position, r.broad_wave, action, policy,
                                               Initiator::kController));
  if (std::vector<GatedStep> steps = StepsNeedingApproval(
          policy.two_person, StepAsk::Rollout(r.position, change.plan.to, /*force=*/false));
      !steps.empty()) {
    // The gate passed, but a second person must let the version into broad.
    // Asking again for the same revision finds the pending request.
    if (approvals_ == nullptr) {
      return absl::FailedPreconditionError(
          "the two-person rule holds this promotion and no approval desk is configured");
    }
    ApprovalAsk ask = RolloutApprovalAsk(r, action, "", /*force=*/false, change.plan.to,
                                         std::move(steps), policy);
    ask.reason = j.explanation;
    RETURN_IF_ERROR(approvals_->Open(ask, Principal{kControllerActor, Role::kReleaser}).status());
    return Outcome::kNone;
  }
  if (action == RolloutAction::kPromote) {
    j.evidence["broad_wave"] = change.plan.broad_wave;
    j.evidence["broad_fraction"] = change.plan.broad_fraction;
  }
  change.audit.actor = kControllerActor;
  change.audit.rollout_id = r.id;
  change.audit.action = change.plan.audit_action;
  change.audit.from_state = std::string(RolloutStateName(change.plan.from.state));
  change.audit.to_state = std::string(RolloutStateName(change.plan.to.state));
  change.audit.reason = j.explanation;
  change.audit.evidence_json = j.evidence.dump();
  absl::Status applied = rollouts_.ApplyRolloutChange(change);
  if (absl::IsAborted(applied)) {
    return Outcome::kNone;  // someone changed it since we read it: judge again next period
  }
  RETURN_IF_ERROR(applied);
  if (j.decision.kind == Decision::Kind::kHalt || j.decision.kind == Decision::Kind::kRollback) {
    observer_.OnAutoStop(j.decision.kind, j.first_apply.has_value()
                                              ? std::optional<absl::Duration>(now - *j.first_apply)
                                              : std::nullopt);
    std::cerr << "controller: " << change.audit.action << " " << r.id << ": " << j.explanation
              << std::endl;
  }
  return Outcome::kTransition;
}

}  // namespace ringwarden

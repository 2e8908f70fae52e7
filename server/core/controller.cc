#include "server/core/controller.h"

#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/core/health_feed.h"
#include "server/core/policy_json.h"
#include "server/domain/decision.h"
#include "server/domain/transition.h"

namespace ringwarden {
namespace {

// FirstApply returns the earliest download or apply report of the version.
std::optional<absl::Time> FirstApply(const RolloutHealthRows& rows, absl::Time window_start) {
  std::optional<absl::Time> first;
  auto consider = [&](absl::Time t) {
    if (t >= window_start && (!first.has_value() || t < *first)) {
      first = t;
    }
  };
  for (const FetchRow& f : rows.fetches) {
    consider(f.at);
  }
  for (const ApplyRow& a : rows.applies) {
    consider(a.at);
  }
  return first;
}

}  // namespace

Controller::Controller(RolloutStore& rollouts, HealthSource& health, SnapshotHolder& snapshots,
                       PolicyCache& policies, ControllerObserver& observer, const Clock& clock,
                       std::function<absl::StatusOr<bool>()> is_leader, ControllerOptions options,
                       ApprovalDesk* approvals)
    : rollouts_(rollouts),
      health_(health),
      snapshots_(snapshots),
      policies_(policies),
      observer_(observer),
      clock_(clock),
      is_leader_(std::move(is_leader)),
      options_(options),
      approvals_(approvals) {}

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
    observer_.OnJudgedRollouts({});  // the leader publishes per-rollout series
    return 0;
  }
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
  observer_.OnJudgedRollouts(evaluated);
  int changed = 0;
  absl::Status first_error;
  for (const RolloutRecord& r : active) {
    absl::StatusOr<bool> acted = Evaluate(r, *snapshot, clock_.Now());
    if (!acted.ok()) {
      if (first_error.ok()) {
        first_error = absl::Status(acted.status().code(),
                                   absl::StrCat("rollout ", r.id, ": ", acted.status().message()));
      }
      continue;
    }
    changed += *acted ? 1 : 0;
  }
  if (changed > 0) {
    RETURN_IF_ERROR(snapshots_.Refresh());
  }
  if (!first_error.ok()) {
    return first_error;
  }
  return changed;
}

absl::StatusOr<bool> Controller::Evaluate(const RolloutRecord& r,
                                          const AssignmentSnapshot& snapshot, absl::Time now) {
  std::optional<Ring> ring = StageRing(r.position.state);
  if (!ring.has_value()) {
    return false;  // PENDING, HALTED and final rollouts wait for a person
  }
  ASSIGN_OR_RETURN(RolloutPolicy policy, policies_.Get(r.policy_name, r.policy_version));
  const RingGatePolicy& gate = policy.ForRing(*ring);
  const absl::Time window_start = r.stage_started_at;
  ASSIGN_OR_RETURN(RolloutHealthRows rows,
                   health_.LoadRolloutHealth(HealthQueryFor(r, window_start, snapshot.pins())));
  const HealthLedger ledger = BuildLedger(rows, r, window_start);
  // Control: agents of this ring and of the rings not reached yet, still on
  // the previous version over the same window.
  std::vector<Ring> control_rings;
  for (Ring c : kAllRings) {
    if (static_cast<int>(c) >= static_cast<int>(*ring)) {
      control_rings.push_back(c);
    }
  }
  const RingHealth health =
      ledger.Summarize(*ring, now, gate.silence_timeout, window_start, control_rings);
  const Decision decision = ringwarden::Evaluate(gate, health, window_start, now);
  const std::string explanation = Explain(decision, *ring, r.version);
  nlohmann::json evidence = DecisionToJson(decision);
  evidence["ring"] = std::string(RingName(*ring));
  evidence["policy"] = absl::StrCat(policy.name, " v", policy.version);
  evidence["explanation"] = explanation;
  evidence["evaluated_unix_ms"] = absl::ToUnixMillis(now);
  const std::optional<absl::Time> first_apply = FirstApply(rows, window_start);
  if (first_apply.has_value()) {
    evidence["first_apply_unix_ms"] = absl::ToUnixMillis(*first_apply);
    evidence["seconds_since_first_apply"] = absl::ToDoubleSeconds(now - *first_apply);
  }

  DecisionRecord record;
  record.rollout_id = r.id;
  record.ring = *ring;
  record.kind = std::string(DecisionKindName(decision.kind));
  record.reason = std::string(DecisionReasonName(decision.reason));
  record.gate_passed = decision.gate_passed;
  record.summary = explanation;
  record.evidence_json = evidence.dump();
  record.evaluated_at = now;
  record.revision = r.revision;
  RETURN_IF_ERROR(rollouts_.UpsertDecision(record));
  int64_t targeted = 0;
  for (const AgentHealthRow& a : rows.agents) {
    targeted += a.ring == *ring ? 1 : 0;
  }
  observer_.OnDecision(r, *ring, targeted, decision, now - window_start, gate.min_bake);

  const std::optional<RolloutAction> action = ActionForDecision(decision.kind);
  if (!action.has_value()) {
    return false;
  }
  RolloutChange change;
  change.rollout_id = r.id;
  change.expected_revision = r.revision;
  ASSIGN_OR_RETURN(change.plan, PlanTransition(r.position, r.broad_wave, *action, policy,
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
    ApprovalAsk ask = RolloutApprovalAsk(r, *action, "", /*force=*/false, change.plan.to,
                                         std::move(steps), policy);
    ask.reason = explanation;
    RETURN_IF_ERROR(approvals_->Open(ask, Principal{kControllerActor, Role::kReleaser}).status());
    return false;
  }
  if (*action == RolloutAction::kPromote) {
    evidence["broad_wave"] = change.plan.broad_wave;
    evidence["broad_fraction"] = change.plan.broad_fraction;
  }
  change.audit.actor = kControllerActor;
  change.audit.rollout_id = r.id;
  change.audit.action = change.plan.audit_action;
  change.audit.from_state = std::string(RolloutStateName(change.plan.from.state));
  change.audit.to_state = std::string(RolloutStateName(change.plan.to.state));
  change.audit.reason = explanation;
  change.audit.evidence_json = evidence.dump();
  absl::Status applied = rollouts_.ApplyRolloutChange(change);
  if (absl::IsAborted(applied)) {
    return false;  // someone changed it since we read it: judge again next period
  }
  RETURN_IF_ERROR(applied);
  if (decision.kind == Decision::Kind::kHalt || decision.kind == Decision::Kind::kRollback) {
    observer_.OnAutoStop(decision.kind, first_apply.has_value()
                                            ? std::optional<absl::Duration>(now - *first_apply)
                                            : std::nullopt);
    std::cerr << "controller: " << change.audit.action << " " << r.id << ": " << explanation
              << std::endl;
  }
  return true;
}

}  // namespace ringwarden

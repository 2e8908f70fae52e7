#include "server/core/approvals.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace ringwarden {
namespace {

constexpr char kDefaultPolicy[] = "default";

std::string StepList(const std::vector<GatedStep>& steps) {
  return absl::StrJoin(
      steps, ", ", [](std::string* out, GatedStep s) { absl::StrAppend(out, GatedStepName(s)); });
}

std::string ApproveCommand(ApprovalKind kind, const std::string& id) {
  return kind == ApprovalKind::kRolloutAction ? absl::StrCat("ringctl rollout approve ", id)
                                              : absl::StrCat("ringctl approvals approve ", id);
}

absl::Status CheckReason(const std::string& reason) {
  if (reason.size() > kMaxApprovalReasonBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("reason is longer than ", kMaxApprovalReasonBytes, " bytes"));
  }
  return absl::OkStatus();
}

std::string FormatUtc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", t, absl::UTCTimeZone());
}

}  // namespace

ApprovalAsk RolloutApprovalAsk(const RolloutRecord& r, RolloutAction action,
                               const std::string& reason, bool force, const RolloutPosition& to,
                               std::vector<GatedStep> steps, const RolloutPolicy& policy) {
  ApprovalAsk ask;
  ask.kind = ApprovalKind::kRolloutAction;
  ask.steps = std::move(steps);
  ask.summary = absl::StrCat(RolloutActionName(action), " rollout ", r.id, " (", r.channel, " v",
                             r.version, ") ", RolloutStateName(r.position.state), " -> ",
                             RolloutStateName(to.state), force ? " with --force" : "");
  ask.request = {{"rollout_id", r.id},
                 {"action", std::string(RolloutActionName(action))},
                 {"reason", reason},
                 {"expected_revision", r.revision},
                 {"force", force}};
  ask.rollout_id = r.id;
  ask.reason = reason;
  ask.policy = absl::StrCat(policy.name, " v", policy.version);
  ask.rule = policy.two_person;
  return ask;
}

ApprovalDesk::ApprovalDesk(ApprovalStore& store, PolicyCache& policies, const Clock& clock)
    : store_(store), policies_(policies), clock_(clock) {}

void ApprovalDesk::SetExecutor(ApprovalKind kind, Executor executor) {
  absl::MutexLock lock(&mu_);
  executors_[kind] = std::move(executor);
}

absl::StatusOr<GoverningRule> ApprovalDesk::DefaultRule() {
  absl::StatusOr<RolloutPolicy> policy = policies_.Get(kDefaultPolicy, 0);
  if (absl::IsNotFound(policy.status())) {
    return GoverningRule{};  // no default policy stored yet: nothing to govern with
  }
  RETURN_IF_ERROR(policy.status());
  return GoverningRule{policy->two_person, absl::StrCat(policy->name, " v", policy->version)};
}

absl::StatusOr<GoverningRule> ApprovalDesk::PolicyChangeRule(const std::string& name) {
  ASSIGN_OR_RETURN(GoverningRule governing, DefaultRule());
  if (governing.rule.enabled || name == kDefaultPolicy) {
    return governing;
  }
  absl::StatusOr<RolloutPolicy> current = policies_.Get(name, 0);
  if (absl::IsNotFound(current.status())) {
    return governing;  // a new policy: the default's rule decides
  }
  RETURN_IF_ERROR(current.status());
  if (current->two_person.enabled) {
    return GoverningRule{current->two_person, absl::StrCat(current->name, " v", current->version)};
  }
  return governing;
}

std::string ApprovalDesk::NewId() {
  absl::MutexLock lock(&mu_);
  return absl::StrFormat("ap-%08x", absl::Uniform<uint32_t>(rng_));
}

absl::StatusOr<ApprovalRecord> ApprovalDesk::Open(const ApprovalAsk& ask, const Principal& asker) {
  if (ask.steps.empty()) {
    return absl::InternalError("an approval request needs at least one gated step");
  }
  RETURN_IF_ERROR(ask.rule.Validate());
  ApprovalRecord r;
  r.id = NewId();
  r.kind = ask.kind;
  r.steps = ask.steps;
  r.summary = ask.summary;
  r.request_json = ask.request.dump();
  r.rollout_id = ask.rollout_id;
  r.policy = ask.policy;
  r.requested_by = asker.name;
  r.needed_role = std::string(RoleName(ask.needed_role));
  r.reason = ask.reason;
  // The same person asking the same thing again finds their pending request.
  r.dedupe_key =
      Sha256Hex(absl::StrCat(ApprovalKindName(ask.kind), "\n", asker.name, "\n", r.request_json));
  r.requested_at = clock_.Now();
  r.expires_at = r.requested_at + ask.rule.approval_ttl;
  AuditRecord audit;
  audit.actor = asker.name;
  audit.action = "approval.request";
  audit.rollout_id = ask.rollout_id;
  audit.reason = ask.reason;
  audit.evidence_json =
      nlohmann::json{
          {"request_id", r.id},           {"kind", std::string(ApprovalKindName(ask.kind))},
          {"steps", StepList(ask.steps)}, {"summary", ask.summary},
          {"policy", ask.policy},         {"expires_unix", absl::ToUnixSeconds(r.expires_at)}}
          .dump();
  return store_.OpenApproval(r, audit);
}

absl::Status ApprovalDesk::Hold(const ApprovalAsk& ask, const Principal& asker) {
  ASSIGN_OR_RETURN(ApprovalRecord r, Open(ask, asker));
  return absl::FailedPreconditionError(
      absl::StrCat("two-person rule (policy ", r.policy, "): ", r.summary, " is a dangerous step (",
                   StepList(r.steps), ") and needs approval by a different ", r.needed_role,
                   "; nothing was changed. Request ", r.id, " waits until ",
                   FormatUtc(r.expires_at), "; approve it with: ", ApproveCommand(r.kind, r.id)));
}

absl::StatusOr<ApprovalRecord> ApprovalDesk::Load(const std::string& id) {
  RETURN_IF_ERROR(ValidateApprovalId(id));
  return store_.GetApproval(id);
}

absl::StatusOr<ApprovalRecord> ApprovalDesk::Decidable(const std::string& id,
                                                       const std::string& reason,
                                                       const Principal& decider, bool approve,
                                                       absl::Time now) {
  RETURN_IF_ERROR(CheckReason(reason));
  ASSIGN_OR_RETURN(ApprovalRecord r, Load(id));
  ASSIGN_OR_RETURN(Role needed, ParseRole(r.needed_role));
  // The asker may always withdraw their own request.
  if (decider.role < needed && (approve || decider.name != r.requested_by)) {
    return absl::PermissionDeniedError(absl::StrCat(approve ? "approving " : "rejecting ", id,
                                                    " needs role ", r.needed_role, "; ",
                                                    decider.name, " is ", RoleName(decider.role)));
  }
  RETURN_IF_ERROR(
      CheckCanDecide(ApprovalTicket{r.id, r.requested_by, r.state, r.expires_at, r.decided_by},
                     decider.name, approve, now));
  return r;
}

absl::StatusOr<ApprovalRecord> ApprovalDesk::Approve(const std::string& id,
                                                     const std::string& reason,
                                                     const Principal& approver) {
  const absl::Time now = clock_.Now();
  ASSIGN_OR_RETURN(ApprovalRecord r, Decidable(id, reason, approver, /*approve=*/true, now));
  ASSIGN_OR_RETURN(Role needed, ParseRole(r.needed_role));
  Executor executor;
  {
    absl::MutexLock lock(&mu_);
    auto it = executors_.find(r.kind);
    if (it != executors_.end()) {
      executor = it->second;
    }
  }
  if (!executor) {
    return absl::FailedPreconditionError(
        absl::StrCat("this server cannot execute ", ApprovalKindName(r.kind), " requests"));
  }
  const ApprovalClaim claim{r.id, r.requested_by, approver.name, reason, now, "{}"};
  absl::Status executed = executor(r, Principal{r.requested_by, needed}, claim);
  if (!executed.ok()) {
    return absl::Status(executed.code(), absl::StrCat("approval request ", id,
                                                      " was not executed: ", executed.message()));
  }
  return store_.GetApproval(id);
}

absl::StatusOr<ApprovalRecord> ApprovalDesk::Reject(const std::string& id,
                                                    const std::string& reason,
                                                    const Principal& decider) {
  const absl::Time now = clock_.Now();
  ASSIGN_OR_RETURN(ApprovalRecord r, Decidable(id, reason, decider, /*approve=*/false, now));
  AuditRecord audit;
  audit.actor = decider.name;
  audit.action = "approval.reject";
  audit.rollout_id = r.rollout_id;
  audit.reason = reason;
  audit.evidence_json =
      nlohmann::json{{"request_id", r.id}, {"requested_by", r.requested_by}, {"summary", r.summary}}
          .dump();
  RETURN_IF_ERROR(store_.RejectApproval(id, decider.name, reason, now, audit));
  return store_.GetApproval(id);
}

absl::StatusOr<std::vector<ApprovalRecord>> ApprovalDesk::List(bool pending_only, int limit) {
  return store_.ListApprovals(pending_only, clock_.Now(), limit);
}

void ApprovalDesk::Attach(const ApprovalClaim& claim, AuditRecord& audit) {
  audit.approval = claim;
  audit.approval->evidence_json = nlohmann::json{
      {"request_id", claim.request_id},
      {"requested_by", claim.requested_by},
      {"approved_by", claim.approved_by},
      {"executes", audit.action}}.dump();
  nlohmann::json evidence = nlohmann::json::parse(audit.evidence_json, nullptr, false);
  if (!evidence.is_object()) {
    evidence = nlohmann::json::object();
  }
  evidence["approval"] = {{"request_id", claim.request_id},
                          {"requested_by", claim.requested_by},
                          {"approved_by", claim.approved_by}};
  audit.evidence_json = evidence.dump();
}

}  // namespace ringwarden

// approvals.h: the desk where dangerous steps wait for a second person.
//
// When the governing policy's two-person rule covers a step (approval.h), the
// operation that asked for it calls Hold(): the desk stores the exact request
// and answers FAILED_PRECONDITION naming the request and the command that
// approves it. Approve() checks the approver (a different principal, of at
// least the role the step needs), then replays the stored request through the
// executor registered for its kind with an ApprovalClaim; the change and the
// decision commit in one transaction (store.h, ApprovalStore), and the
// replayed operation re-checks everything, so a world that moved refuses it.
//
//   ApprovalDesk desk(store, policies, clock);
//   desk.SetExecutor(ApprovalKind::kFloor, [&](const ApprovalRecord& r, const Principal& asker,
//                                              const ApprovalClaim& claim) { ... });
//   ASSIGN_OR_RETURN(ApprovalRecord done, desk.Approve("ap-1a2b3c4d", "looks right", bob));
//
// Which policy governs: a rollout's own recorded policy version for rollout
// actions (the controller's included); the newest "default" policy for pins,
// floors and policy changes, and for a policy change also the newest version
// of the policy being changed, so that a rule is never switched off alone.
// Thread-safety: safe to call from many threads once the executors are set
// (SetExecutor before serving).
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "server/core/identity.h"
#include "server/core/policy_cache.h"
#include "server/domain/approval.h"
#include "server/domain/decision_policy.h"
#include "server/storage/store.h"

namespace ringwarden {

// ApprovalAsk is a dangerous step someone asked for, as it waits for approval.
struct ApprovalAsk {
  ApprovalKind kind = ApprovalKind::kRolloutAction;
  std::vector<GatedStep> steps;  // from StepsNeedingApproval, not empty
  std::string summary;           // what would happen, e.g. "promote ro-1 EARLY -> BROAD"
  nlohmann::json request;        // the exact request to replay
  std::string rollout_id;
  std::string reason;
  Role needed_role = Role::kReleaser;
  // The governing policy: its rule's approval_ttl sets the expiry.
  std::string policy;  // e.g. "default v3"
  TwoPersonRule rule;
};

// GoverningRule is a policy's two-person rule and how the policy is named.
struct GoverningRule {
  TwoPersonRule rule;
  std::string policy;  // e.g. "default v3"
};

// RolloutApprovalAsk is the request that `action` on rollout `r` (leading to
// `to`) waits with: replayed, it acts only while the rollout is at r.revision.
ApprovalAsk RolloutApprovalAsk(const RolloutRecord& r, RolloutAction action,
                               const std::string& reason, bool force, const RolloutPosition& to,
                               std::vector<GatedStep> steps, const RolloutPolicy& policy);

class ApprovalDesk {
 public:
  // Executor replays `request` as `asker` (its requester, with the role the
  // step needs), carrying `claim` on the change's audit record.
  using Executor = std::function<absl::Status(const ApprovalRecord& request, const Principal& asker,
                                              const ApprovalClaim& claim)>;

  // References must outlive the desk.
  ApprovalDesk(ApprovalStore& store, PolicyCache& policies, const Clock& clock);

  // SetExecutor registers who replays requests of `kind`; call before serving.
  void SetExecutor(ApprovalKind kind, Executor executor);

  // DefaultRule is the rule of the newest "default" policy (off when there is none).
  absl::StatusOr<GoverningRule> DefaultRule();
  // PolicyChangeRule is the default rule, or the newest version of `name`'s when
  // that one is on and the default's is not.
  absl::StatusOr<GoverningRule> PolicyChangeRule(const std::string& name);

  // Open stores `ask` for `asker` (or finds the same request pending) and returns it.
  absl::StatusOr<ApprovalRecord> Open(const ApprovalAsk& ask, const Principal& asker);
  // Hold is Open answered as the FAILED_PRECONDITION that names the request and
  // how to approve it; the store's error when storing failed.
  absl::Status Hold(const ApprovalAsk& ask, const Principal& asker);

  // Approve executes request `id` on behalf of `approver`. INVALID_ARGUMENT for
  // a malformed id or reason, NOT_FOUND for an unknown one, PERMISSION_DENIED
  // for the requester themself or a role below the one the step needs,
  // FAILED_PRECONDITION when expired, decided, or the replayed request is
  // refused now (its message says why; the request stays pending).
  absl::StatusOr<ApprovalRecord> Approve(const std::string& id, const std::string& reason,
                                         const Principal& approver);
  // Reject decides request `id` as rejected; the requester may withdraw their own.
  absl::StatusOr<ApprovalRecord> Reject(const std::string& id, const std::string& reason,
                                        const Principal& decider);
  // List lists requests newest first; `pending_only` keeps the pending, unexpired ones.
  absl::StatusOr<std::vector<ApprovalRecord>> List(bool pending_only, int limit);

  // Attach marks `audit` as the execution of the approved request `claim` names.
  static void Attach(const ApprovalClaim& claim, AuditRecord& audit);

 private:
  std::string NewId();
  absl::StatusOr<ApprovalRecord> Load(const std::string& id);
  // Decidable loads request `id` and checks that `decider` may approve (or
  // reject) it at `now`: reason size, role, state, expiry, the two-person rule.
  absl::StatusOr<ApprovalRecord> Decidable(const std::string& id, const std::string& reason,
                                           const Principal& decider, bool approve, absl::Time now);

  ApprovalStore& store_;
  PolicyCache& policies_;
  const Clock& clock_;
  absl::Mutex mu_;
  std::map<ApprovalKind, Executor> executors_ ABSL_GUARDED_BY(mu_);
  absl::BitGen rng_ ABSL_GUARDED_BY(mu_);
};

// kMaxApprovalReasonBytes bounds the reasons of approvals and rejections.
inline constexpr size_t kMaxApprovalReasonBytes = 1024;

}  // namespace ringwarden

// rollout_manager.h: the release operations behind AdminService.
//
// Validates input, applies the domain rules (state machine, version order),
// writes through the Store in one transaction per operation with its audit
// entry, and refreshes the assignment snapshot so agents see the change on
// their next poll. Knows nothing of gRPC.
// Thread-safety: safe to call from many threads; the database serializes
// conflicting changes (optimistic revision checks).
#pragma once

#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/dsse.h"
#include "common/names.h"
#include "server/core/approvals.h"
#include "server/core/identity.h"
#include "server/core/manifest.h"
#include "server/core/policy_cache.h"
#include "server/core/snapshot.h"
#include "server/domain/exposure.h"
#include "server/storage/store.h"

namespace ringwarden {

// Size limits on what release engineers send.
inline constexpr size_t kMaxPayloadBytes = 16 * 1024 * 1024;
inline constexpr size_t kMaxReasonBytes = 1024;

struct RolloutView {
  RolloutRecord rollout;
  std::vector<RingProgressRecord> rings;
  ExposurePlan exposure;  // of the stage ring; disabled outside a stage
};

struct RolloutExplanation {
  RolloutView view;
  std::vector<DecisionRecord> decisions;
  std::vector<AuditRecord> automatic_actions;
};

class RolloutManager {
 public:
  // `decode_manifest` parses verified manifest bytes (the transport's codec);
  // `release_keys` names who must have signed content now (the current
  // root's release role). Every reference must outlive the manager.
  RolloutManager(Store& store, SnapshotHolder& snapshots, PolicyCache& policies,
                 ReleaseKeysSource release_keys, ManifestDecoder decode_manifest,
                 const Clock& clock);
  // The same with release keys that never change (tests, tools).
  RolloutManager(Store& store, SnapshotHolder& snapshots, PolicyCache& policies,
                 const TrustedKeys& trusted_keys, ManifestDecoder decode_manifest,
                 const Clock& clock);

  // UploadContent verifies the envelope and payload and stores them.
  absl::StatusOr<ContentRecord> UploadContent(const std::string& envelope_json,
                                              const std::string& payload, const Principal& actor);

  // StartRollout records the newest version of policy `policy_name` ("" = "default").
  // FAILED_PRECONDITION for a version below the channel's floor.
  absl::StatusOr<RolloutView> StartRollout(const std::string& channel, int64_t version, bool hold,
                                           bool supersede, const std::string& reason,
                                           const std::string& policy_name, const Principal& actor);
  // Act applies promote, halt, resume or roll back. expected_revision 0 skips
  // the optimistic check. A promotion before the stage gate passed needs `force`
  // and a reason; none is allowed during an emergency stop. Under the rollout
  // policy's two-person rule, entering BROAD and any forced promotion are held
  // for approval (FAILED_PRECONDITION naming the request) unless `approved`
  // is the claim of the approved request being executed.
  absl::StatusOr<RolloutView> Act(const std::string& id, RolloutAction action,
                                  const std::string& reason, int64_t expected_revision, bool force,
                                  const Principal& actor, const ApprovalClaim* approved = nullptr);
  absl::StatusOr<RolloutExplanation> Explain(const std::string& id);

  // SetPolicy stores a new version of policy `name`; held for approval under
  // the two-person rule of the default policy or of `name` itself.
  absl::StatusOr<PolicyRecord> SetPolicy(const std::string& name, const std::string& policy_json,
                                         const std::string& reason, const Principal& actor,
                                         const ApprovalClaim* approved = nullptr);
  absl::StatusOr<PolicyRecord> GetPolicy(const std::string& name, int64_t version);
  // EnsureDefaultPolicy stores DefaultRolloutPolicy() as "default" if no such policy exists.
  absl::Status EnsureDefaultPolicy();
  absl::StatusOr<RolloutView> Get(const std::string& id);

  absl::Status SetEmergencyStop(bool active, const std::string& reason, const Principal& actor);
  // SetPin refuses (FAILED_PRECONDITION) a pin that holds agents below the
  // channel's floor: a version pin below it, or one (n-1 included) that
  // resolves below it today. Under the default policy's two-person rule a pin
  // below the newest completed version (n-1 included) is held for approval.
  absl::StatusOr<PinRecord> SetPin(const std::string& label_key, const std::string& label_value,
                                   const std::string& channel, const std::string& policy,
                                   const std::string& reason, const Principal& actor,
                                   const ApprovalClaim* approved = nullptr);

  // SetReportGap tells the manager the longest normal gap between two reports of a healthy
  // agent (the server's poll interval with jitter plus the agents' heartbeat interval), spelled
  // out in `text`. Policies whose silence timeout or probation is shorter are refused when set
  // and when a rollout would start under them (CheckPolicyTimings). Call before serving.
  void SetReportGap(absl::Duration gap, std::string text) {
    report_gap_ = gap;
    report_gap_text_ = std::move(text);
  }

  // approvals is the desk where held steps wait; it replays rollout actions,
  // pins and policy changes through this manager (floors: see TrustKeeper).
  ApprovalDesk& approvals() { return approvals_; }

 private:
  std::string NewRolloutId();
  // Progress counts the rollout per ring from the controller's ledger.
  // and the stage's exposure budget with the controller's rules, into `view`.
  absl::Status Progress(RolloutView& view);
  // AdmitFirstHosts lets the first hosts of a stage that just started under slow start in at
  // once, instead of on the controller's next period; failures are left to the controller.
  void AdmitFirstHosts(const std::string& id);
  // RefreshSnapshot makes a committed change visible to polls at once.
  void RefreshSnapshot();
  // CheckPinAboveFloor refuses a holding pin that keeps agents below the floor.
  absl::Status CheckPinAboveFloor(const PinRecord& pin);
  // NewestCompleted returns the channel's newest completed, unrevoked version (0: none).
  absl::StatusOr<int64_t> NewestCompleted(const std::string& channel);
  // RegisterExecutors lets the desk replay rollout actions, pins and policy changes.
  void RegisterExecutors();
  // ReplayRolloutAction executes an approved rollout request if the rollout has not moved.
  absl::Status ReplayRolloutAction(const ApprovalRecord& request, const Principal& asker,
                                   const ApprovalClaim& claim);

  Store& store_;
  SnapshotHolder& snapshots_;
  PolicyCache& policies_;
  const ReleaseKeysSource release_keys_;
  const ManifestDecoder decode_manifest_;
  const Clock& clock_;
  ApprovalDesk approvals_;
  absl::Duration report_gap_ = absl::ZeroDuration();
  std::string report_gap_text_;
  absl::Mutex rng_mu_;
  absl::BitGen rng_ ABSL_GUARDED_BY(rng_mu_);
};

}  // namespace ringwarden

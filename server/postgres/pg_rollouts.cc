// PgStore's rollout role: rollouts, their planned transitions (with the
// optimistic revision check) and the controller's latest decision per ring.
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/postgres/pg_pool_internal.h"
#include "server/postgres/pg_store.h"
#include "server/postgres/pg_store_internal.h"
#include "server/postgres/sql.h"

namespace ringwarden {
namespace {

std::string HaltedFromName(const RolloutPosition& position) {
  return position.halted_from.has_value() ? std::string(RolloutStateName(*position.halted_from))
                                          : std::string();
}

// StoredOrKept maps kKeepWave to NULL, which the update reads as "keep the stored value".
template <typename T>
std::optional<T> StoredOrKept(T value) {
  if (value == static_cast<T>(kKeepWave)) {
    return std::nullopt;
  }
  return value;
}

// ApplyChange commits `change.plan` with its side effects and audit entry in
// `tx`. ABORTED (the only source of it) when the rollout moved past the
// expected revision: re-reading is the only way forward, so it is never retried.
absl::Status ApplyChange(PgTx& tx, const RolloutChange& change) {
  const pqxx::result target = tx.Exec(sql::kRolloutTarget, change.rollout_id);
  if (target.empty()) {
    return absl::NotFoundError(absl::StrCat("no rollout with id \"", change.rollout_id, "\""));
  }
  const std::string channel = target[0][0].as<std::string>();
  const int64_t version = target[0][1].as<int64_t>();
  const TransitionPlan& plan = change.plan;
  RETURN_IF_ERROR(ClaimApproval(tx, change.audit));
  if (plan.mark_completed || plan.revoke_version) {
    // Serializes with rollout creation, which checks completed and revoked versions.
    tx.Exec(sql::kLockChannelRow, channel);
  }
  const pqxx::result updated =
      tx.Exec(sql::kUpdateRolloutAtRevision, change.rollout_id, change.expected_revision,
              std::string(RolloutStateName(plan.to.state)), HaltedFromName(plan.to),
              plan.stage_changed, StoredOrKept(plan.broad_wave), StoredOrKept(plan.broad_fraction),
              StoredOrKept(plan.admitted_fraction));
  if (updated.affected_rows() != 1) {
    return absl::AbortedError(absl::StrCat("rollout ", change.rollout_id,
                                           " changed concurrently (expected revision ",
                                           change.expected_revision, "); re-read and retry"));
  }
  if (plan.mark_completed) {
    tx.Exec(sql::kCompleteContent, channel, version);
  }
  if (plan.revoke_version) {
    tx.Exec(sql::kRevokeContent, channel, version);
  }
  AppendAudit(tx, change.audit);
  return absl::OkStatus();
}

}  // namespace

absl::Status PgStore::CreateRollout(const NewRollout& create) {
  const RolloutRecord& r = create.rollout;
  return pool_->Run("create_rollout", "creating the rollout", [&](PgTx& tx) -> absl::Status {
    // Re-check under the channel lock what the caller checked before: a
    // completion or rollback that committed meanwhile must win.
    const pqxx::result check = tx.Exec(sql::kCheckRolloutVersion, r.channel, r.version);
    if (check.empty()) {
      return absl::NotFoundError(
          absl::StrCat("channel ", r.channel, " has no version ", r.version, "; upload it first"));
    }
    if (check[0][0].as<bool>()) {
      return absl::FailedPreconditionError(absl::StrCat(
          r.channel, " v", r.version, " was revoked by a rollback and can never ship"));
    }
    const int64_t newest_completed = check[0][1].as<int64_t>();
    if (r.version <= newest_completed) {
      return absl::FailedPreconditionError(absl::StrCat(
          r.channel, " v", newest_completed, " already completed; start a newer version"));
    }
    const int64_t floor = check[0][2].as<int64_t>();
    if (r.version < floor) {
      return absl::FailedPreconditionError(
          absl::StrCat(r.channel, " v", r.version, " is below the channel's floor v", floor,
                       " (raised meanwhile); roll out v", floor, " or newer"));
    }
    if (create.supersede.has_value()) {
      RETURN_IF_ERROR(ApplyChange(tx, *create.supersede));
    }
    try {
      tx.Exec(sql::kInsertRollout, r.id, r.channel, r.version,
              std::string(RolloutStateName(r.position.state)), HaltedFromName(r.position),
              r.previous_version, r.created_by, r.policy_name, r.policy_version, r.broad_wave,
              r.broad_fraction, r.admitted_fraction);
    } catch (const pqxx::unique_violation&) {
      // The partial unique index allows one unfinished rollout per channel.
      // Returning an error rolls the whole transaction back.
      return absl::FailedPreconditionError(absl::StrCat(
          "channel ", r.channel,
          " already has an unfinished rollout; finish, roll back or supersede it (--supersede)"));
    }
    for (const AuditRecord& a : create.audit) {
      AppendAudit(tx, a);
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<RolloutRecord> PgStore::GetRollout(const std::string& id) {
  RolloutRecord out;
  RETURN_IF_ERROR(pool_->Run("get_rollout", "reading the rollout", [&](PgTx& tx) -> absl::Status {
    const pqxx::result res = tx.Exec(sql::kGetRollout, id);
    if (res.empty()) {
      return absl::NotFoundError(
          absl::StrCat("no rollout with id \"", id, "\"; see ringctl rollout list"));
    }
    ASSIGN_OR_RETURN(out, RolloutFromRow(res[0]));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<RolloutRecord>> PgStore::ListRollouts(const std::string& channel,
                                                                 bool active_only, int limit) {
  std::vector<RolloutRecord> out;
  RETURN_IF_ERROR(pool_->Run("list_rollouts", "listing rollouts", [&](PgTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(out, RolloutsFromResult(tx.Exec(sql::kListRollouts, channel, active_only,
                                                     FinalStatesParam(), limit)));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::optional<RolloutRecord>> PgStore::GetUnfinishedRollout(
    const std::string& channel) {
  ASSIGN_OR_RETURN(std::vector<RolloutRecord> active, ListRollouts(channel, true, 1));
  if (active.empty()) {
    return std::nullopt;
  }
  return active.front();
}

absl::Status PgStore::ApplyRolloutChange(const RolloutChange& change) {
  return pool_->Run("change_rollout", "changing the rollout",
                    [&](PgTx& tx) { return ApplyChange(tx, change); });
}

absl::Status PgStore::UpdateExposure(const std::string& rollout_id, int64_t expected_revision,
                                     double admitted_fraction, int64_t admitted_hosts) {
  return pool_->Run("update_exposure", "raising the exposure budget", [&](PgTx& tx) {
    const pqxx::result updated = tx.Exec(sql::kUpdateExposure, rollout_id, expected_revision,
                                         admitted_fraction, admitted_hosts);
    if (updated.affected_rows() != 1) {
      return absl::AbortedError(absl::StrCat("rollout ", rollout_id,
                                             " changed concurrently (expected revision ",
                                             expected_revision, "); re-read and retry"));
    }
    return absl::OkStatus();
  });
}

absl::Status PgStore::UpsertDecision(const DecisionRecord& d) {
  return pool_->Run("upsert_decision", "recording the decision", [&](PgTx& tx) {
    tx.Exec(sql::kUpsertDecision, d.rollout_id, std::string(RingName(d.ring)), d.kind, d.reason,
            d.gate_passed, d.summary, d.evidence_json, ToMicros(d.evaluated_at), d.revision);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<DecisionRecord>> PgStore::ListDecisions(const std::string& rollout_id) {
  std::vector<DecisionRecord> out;
  RETURN_IF_ERROR(pool_->Run("list_decisions", "reading decisions", [&](PgTx& tx) -> absl::Status {
    out.clear();
    for (const pqxx::row& row : tx.Exec(sql::kListDecisions, rollout_id, RingOrderParam())) {
      DecisionRecord d;
      d.rollout_id = rollout_id;
      ASSIGN_OR_RETURN(d.ring, ParseStored(ParseRing(row[0].as<std::string>()), "decision ring"));
      d.kind = row[1].as<std::string>();
      d.reason = row[2].as<std::string>();
      d.gate_passed = row[3].as<bool>();
      d.summary = row[4].as<std::string>();
      d.evidence_json = row[5].as<std::string>();
      d.evaluated_at = TimeFromMicros(row[6]);
      d.revision = row[7].as<int64_t>();
      out.push_back(std::move(d));
    }
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace ringwarden

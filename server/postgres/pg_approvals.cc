// PgStore's approval role: requests for a second person's approval. A request
// is opened once per dedupe key while pending (a partial unique index), and
// decided only while pending and unexpired: the approval by the change that
// executes it (ClaimApproval, in that change's transaction), a rejection here.
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/postgres/pg_pool_internal.h"
#include "server/postgres/pg_store.h"
#include "server/postgres/pg_store_internal.h"
#include "server/postgres/sql.h"

namespace ringwarden {
namespace {

absl::StatusOr<ApprovalRecord> ApprovalFromRow(const pqxx::row& row) {
  ApprovalRecord a;
  a.id = row[0].as<std::string>();
  ASSIGN_OR_RETURN(a.kind,
                   ParseStored(ParseApprovalKind(row[1].as<std::string>()), "approval kind"));
  for (const std::string& step : KeyIdsFromJson(row[2])) {
    ASSIGN_OR_RETURN(GatedStep s, ParseStored(ParseGatedStep(step), "approval step"));
    a.steps.push_back(s);
  }
  a.summary = row[3].as<std::string>();
  a.request_json = row[4].as<std::string>();
  a.rollout_id = row[5].as<std::string>();
  a.policy = row[6].as<std::string>();
  a.requested_by = row[7].as<std::string>();
  a.needed_role = row[8].as<std::string>();
  a.reason = row[9].as<std::string>();
  a.dedupe_key = row[10].as<std::string>();
  ASSIGN_OR_RETURN(a.state,
                   ParseStored(ParseApprovalState(row[11].as<std::string>()), "approval state"));
  a.requested_at = TimeFromMicros(row[12]);
  a.expires_at = TimeFromMicros(row[13]);
  a.decided_by = row[14].as<std::string>();
  a.decided_at = OptionalTimeFromMicros(row[15]);
  a.decision_reason = row[16].as<std::string>();
  return a;
}

std::string StepsParam(const std::vector<GatedStep>& steps) {
  std::vector<std::string> names;
  for (GatedStep s : steps) {
    names.emplace_back(GatedStepName(s));
  }
  return TextArray(names);
}

}  // namespace

absl::Status ClaimApproval(PgTx& tx, const AuditRecord& audit) {
  if (!audit.approval.has_value()) {
    return absl::OkStatus();
  }
  const ApprovalClaim& claim = *audit.approval;
  const pqxx::result decided = tx.Exec(sql::kDecideApproval, claim.request_id,
                                       std::string(ApprovalStateName(ApprovalState::kApproved)),
                                       claim.approved_by, ToMicros(claim.at), claim.reason);
  if (decided.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("approval request ", claim.request_id,
                     " is no longer pending (decided meanwhile, or expired); nothing was changed"));
  }
  AppendAudit(tx, ApproverAudit(audit));
  return absl::OkStatus();
}

absl::StatusOr<ApprovalRecord> PgStore::OpenApproval(const ApprovalRecord& r,
                                                     const AuditRecord& audit) {
  ApprovalRecord out;
  RETURN_IF_ERROR(
      pool_->Run("open_approval", "storing the approval request", [&](PgTx& tx) -> absl::Status {
        tx.Exec(sql::kExpireApprovalsOfKey, r.dedupe_key, ToMicros(r.requested_at));
        const pqxx::result inserted = tx.Exec(
            sql::kInsertApproval, r.id, std::string(ApprovalKindName(r.kind)), StepsParam(r.steps),
            r.summary, r.request_json, r.rollout_id, r.policy, r.requested_by, r.needed_role,
            r.reason, r.dedupe_key, ToMicros(r.requested_at), ToMicros(r.expires_at));
        if (!inserted.empty()) {
          AppendAudit(tx, audit);
        }
        const pqxx::result pending = tx.Exec(sql::kGetPendingApprovalByKey, r.dedupe_key);
        if (pending.empty()) {
          return absl::UnavailableError("the pending approval request vanished; retry");
        }
        ASSIGN_OR_RETURN(out, ApprovalFromRow(pending[0]));
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<ApprovalRecord> PgStore::GetApproval(const std::string& id) {
  ApprovalRecord out;
  RETURN_IF_ERROR(
      pool_->Run("get_approval", "reading the approval request", [&](PgTx& tx) -> absl::Status {
        const pqxx::result res = tx.Exec(sql::kGetApproval, id);
        if (res.empty()) {
          return absl::NotFoundError(
              absl::StrCat("no approval request \"", id, "\"; see ringctl approvals list"));
        }
        ASSIGN_OR_RETURN(out, ApprovalFromRow(res[0]));
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<std::vector<ApprovalRecord>> PgStore::ListApprovals(bool pending_only,
                                                                   absl::Time now, int limit) {
  std::vector<ApprovalRecord> out;
  RETURN_IF_ERROR(
      pool_->Run("list_approvals", "listing approval requests", [&](PgTx& tx) -> absl::Status {
        out.clear();
        for (const pqxx::row& row :
             tx.Exec(sql::kListApprovals, pending_only, ToMicros(now), limit)) {
          ASSIGN_OR_RETURN(ApprovalRecord a, ApprovalFromRow(row));
          out.push_back(std::move(a));
        }
        return absl::OkStatus();
      }));
  return out;
}

absl::Status PgStore::RejectApproval(const std::string& id, const std::string& decided_by,
                                     const std::string& reason, absl::Time at,
                                     const AuditRecord& audit) {
  return pool_->Run(
      "reject_approval", "rejecting the approval request", [&](PgTx& tx) -> absl::Status {
        const pqxx::result decided = tx.Exec(
            sql::kDecideApproval, id, std::string(ApprovalStateName(ApprovalState::kRejected)),
            decided_by, ToMicros(at), reason);
        if (decided.empty()) {
          return absl::FailedPreconditionError(absl::StrCat(
              "approval request ", id, " is no longer pending (decided meanwhile, or expired)"));
        }
        AppendAudit(tx, audit);
        return absl::OkStatus();
      });
}

}  // namespace ringwarden

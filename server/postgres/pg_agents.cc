// PgStore's agent directory: enrollment tokens (row-locked while a use is
// taken) and the identity of enrolled agents.
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/secret_token.h"
#include "common/status_macros.h"
#include "server/postgres/pg_pool_internal.h"
#include "server/postgres/pg_store.h"
#include "server/postgres/pg_store_internal.h"
#include "server/postgres/sql.h"

namespace ringwarden {
namespace {

using Labels = std::map<std::string, std::string>;

Labels LabelsFromJson(const pqxx::field& field) {
  return nlohmann::json::parse(field.as<std::string>()).get<Labels>();
}

EnrollmentTokenRecord TokenFromRow(const pqxx::row& row) {
  EnrollmentTokenRecord t;
  t.id = row[0].as<std::string>();
  t.secret_sha256 = absl::HexStringToBytes(row[1].as<std::string>());
  t.labels = LabelsFromJson(row[2]);
  t.max_uses = row[3].as<int32_t>();
  t.uses = row[4].as<int32_t>();
  t.created_at = TimeFromMicros(row[5]);
  t.created_by = row[6].as<std::string>();
  t.expires_at = TimeFromMicros(row[7]);
  t.revoked_at = OptionalTimeFromMicros(row[8]);
  t.description = row[9].as<std::string>();
  return t;
}

absl::StatusOr<AgentRecord> GetAgentIn(PgTx& tx, const std::string& agent_id) {
  const pqxx::result rows = tx.Exec(sql::kGetAgent, agent_id);
  if (rows.empty()) {
    return absl::NotFoundError(absl::StrCat("no agent ", agent_id, " is enrolled"));
  }
  return AgentFromRow(rows[0]);
}

}  // namespace

absl::StatusOr<AgentRecord> AgentFromRow(const pqxx::row& row) {
  AgentRecord a;
  a.agent_id = row[0].as<std::string>();
  ASSIGN_OR_RETURN(a.ring, ParseStored(ParseRing(row[1].as<std::string>()), "agent ring"));
  a.labels = LabelsFromJson(row[2]);
  a.hostname = row[3].as<std::string>();
  a.enrolled_at = TimeFromMicros(row[4]);
  a.last_seen_at = OptionalTimeFromMicros(row[5]);
  a.versions =
      nlohmann::json::parse(row[6].as<std::string>()).get<std::map<std::string, int64_t>>();
  a.reported_labels = LabelsFromJson(row[7]);
  a.revoked_at = OptionalTimeFromMicros(row[8]);
  a.enrolled_with = row[9].as<std::string>();
  return a;
}

absl::flat_hash_map<std::string, AgentGate> AgentGatesFromResult(const pqxx::result& result) {
  absl::flat_hash_map<std::string, AgentGate> gates;
  gates.reserve(result.size());
  for (const pqxx::row& row : result) {
    AgentGate& gate = gates[row[0].as<std::string>()];
    gate.labels = LabelsFromJson(row[1]);
    gate.revoked_at = OptionalTimeFromMicros(row[2]);
    gate.credentials_valid_after = OptionalTimeFromMicros(row[3]);
  }
  return gates;
}

absl::Status PgStore::CreateEnrollmentToken(const EnrollmentTokenRecord& token,
                                            const AuditRecord& audit) {
  return pool_->Run("create_enrollment_token", "storing the enrollment token", [&](PgTx& tx) {
    tx.Exec(sql::kInsertEnrollmentToken, token.id, absl::BytesToHexString(token.secret_sha256),
            nlohmann::json(token.labels).dump(), token.max_uses, token.created_by,
            token.description, ToMicros(token.expires_at));
    AppendAudit(tx, audit);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<EnrollmentTokenRecord>> PgStore::ListEnrollmentTokens() {
  std::vector<EnrollmentTokenRecord> out;
  RETURN_IF_ERROR(pool_->Run("list_enrollment_tokens", "listing enrollment tokens", [&](PgTx& tx) {
    out.clear();
    for (const pqxx::row& row : tx.Exec(sql::kListEnrollmentTokens)) {
      out.push_back(TokenFromRow(row));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<EnrollmentTokenRecord> PgStore::RevokeEnrollmentToken(const std::string& id,
                                                                     const AuditRecord& audit) {
  EnrollmentTokenRecord out;
  RETURN_IF_ERROR(pool_->Run(
      "revoke_enrollment_token", "revoking the enrollment token", [&](PgTx& tx) -> absl::Status {
        const pqxx::result rows = tx.Exec(sql::kLockEnrollmentToken, id);
        if (rows.empty()) {
          return absl::NotFoundError(absl::StrCat("no enrollment token ", id));
        }
        tx.Exec(sql::kRevokeEnrollmentToken, id);
        out = TokenFromRow(tx.Exec1(sql::kLockEnrollmentToken, id));
        AppendAudit(tx, audit);
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<EnrolledAgent> PgStore::EnrollAgent(const EnrollmentRequest& request) {
  EnrolledAgent out;
  RETURN_IF_ERROR(pool_->Run("enroll_agent", "enrolling the agent", [&](PgTx& tx) -> absl::Status {
    const pqxx::result tokens = tx.Exec(sql::kLockEnrollmentToken, request.token_id);
    if (tokens.empty() || !SecretMatches(ParsedToken{request.token_id, request.presented_sha256},
                                         TokenFromRow(tokens[0]).secret_sha256)) {
      return absl::PermissionDeniedError(
          "enrollment token is not known; ask an admin for one (ringctl enroll-token create)");
    }
    const EnrollmentTokenRecord token = TokenFromRow(tokens[0]);
    std::optional<ExistingAgent> existing;
    if (const pqxx::result agents = tx.Exec(sql::kLockAgent, request.agent_id); !agents.empty()) {
      existing = ExistingAgent{OptionalTimeFromMicros(agents[0][0]), agents[0][1].as<bool>()};
    }
    RETURN_IF_ERROR(AdmitEnrollment(EnrollmentTokenState{token.id, token.max_uses, token.uses,
                                                         token.expires_at, token.revoked_at},
                                    existing, request.holds_credential, request.agent_id,
                                    request.now));
    out.labels = token.labels;
    out.ring = request.ring_of(token.labels);
    tx.Exec(sql::kEnrollAgent, request.agent_id, nlohmann::json(out.labels).dump(),
            std::string(RingName(out.ring)), request.hostname,
            nlohmann::json(request.reported_labels).dump(), token.id);
    tx.Exec(sql::kUseEnrollmentToken, token.id);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<AgentRecord> PgStore::LabelAgent(const std::string& agent_id,
                                                const std::map<std::string, std::string>& labels,
                                                Ring ring, const AuditRecord& audit) {
  AgentRecord out;
  RETURN_IF_ERROR(pool_->Run("label_agent", "labelling the agent", [&](PgTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(out, GetAgentIn(tx, agent_id));
    tx.Exec(sql::kLabelAgent, agent_id, nlohmann::json(labels).dump(), std::string(RingName(ring)));
    ASSIGN_OR_RETURN(out, GetAgentIn(tx, agent_id));
    AppendAudit(tx, audit);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<AgentRecord> PgStore::RevokeAgent(const std::string& agent_id,
                                                 const AuditRecord& audit) {
  AgentRecord out;
  RETURN_IF_ERROR(pool_->Run("revoke_agent", "revoking the agent", [&](PgTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(out, GetAgentIn(tx, agent_id));
    tx.Exec(sql::kRevokeAgent, agent_id);
    ASSIGN_OR_RETURN(out, GetAgentIn(tx, agent_id));
    AppendAudit(tx, audit);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<AgentRecord> PgStore::ResetAgent(const std::string& agent_id,
                                                const AuditRecord& audit) {
  AgentRecord out;
  RETURN_IF_ERROR(pool_->Run("reset_agent", "resetting the agent", [&](PgTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(out, GetAgentIn(tx, agent_id));
    tx.Exec(sql::kResetAgent, agent_id);
    ASSIGN_OR_RETURN(out, GetAgentIn(tx, agent_id));
    AppendAudit(tx, audit);
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace ringwarden

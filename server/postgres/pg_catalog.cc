// PgStore's catalog and policy roles: content versions, pins, settings (the
// emergency stop), the catalog the assignment snapshot is built from, and
// versioned rollout policies.
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/postgres/pg_pool_internal.h"
#include "server/postgres/pg_store.h"
#include "server/postgres/pg_store_internal.h"
#include "server/postgres/sql.h"

namespace ringwarden {
namespace {

// Keys of the settings table.
constexpr char kEmergencyStopKey[] = "emergency_stop";
constexpr char kAgentTokenSecretKey[] = "agent_token_secret";

// ContentFromRow reads the columns of sql::kListContent (and kGetContent's first ones).
ContentRecord ContentFromRow(const pqxx::row& row) {
  ContentRecord c;
  c.channel = row[0].as<std::string>();
  c.version = row[1].as<int64_t>();
  c.sha256 = row[2].as<std::string>();
  c.size = row[3].as<int64_t>();
  c.envelope_json = row[4].as<std::string>();
  c.key_ids = KeyIdsFromJson(row[5]);
  c.description = row[6].as<std::string>();
  c.uploaded_at = TimeFromMicros(row[7]);
  c.uploaded_by = row[8].as<std::string>();
  c.completed = row[9].as<bool>();
  c.revoked = row[10].as<bool>();
  return c;
}

absl::StatusOr<std::vector<PinRecord>> PinsFromResult(const pqxx::result& result) {
  std::vector<PinRecord> out;
  out.reserve(result.size());
  for (const pqxx::row& row : result) {
    PinRecord p;
    p.label_key = row[0].as<std::string>();
    p.label_value = row[1].as<std::string>();
    p.channel = row[2].as<std::string>();
    ASSIGN_OR_RETURN(p.policy, ParseStored(ParsePinPolicy(row[3].as<std::string>()), "pin policy"));
    out.push_back(std::move(p));
  }
  return out;
}

absl::StatusOr<RingPolicy> RingPolicyFromRow(const pqxx::row& row) {
  RingPolicy policy;
  policy.canary_buckets = row[0].as<int>();
  policy.early_buckets = row[1].as<int>();
  policy.overrides.clear();
  for (const nlohmann::json& o : nlohmann::json::parse(row[2].as<std::string>())) {
    LabelOverride override_rule;
    override_rule.key = o.at("key").get<std::string>();
    override_rule.value = o.at("value").get<std::string>();
    ASSIGN_OR_RETURN(override_rule.ring,
                     ParseStored(ParseRing(o.at("ring").get<std::string>()), "override ring"));
    policy.overrides.push_back(std::move(override_rule));
  }
  policy.seed = row[3].as<std::string>();
  return policy;
}

PolicyRecord PolicyFromRow(const pqxx::row& row) {
  PolicyRecord p;
  p.name = row[0].as<std::string>();
  p.version = row[1].as<int64_t>();
  p.body_json = row[2].as<std::string>();
  p.created_by = row[3].as<std::string>();
  p.created_at = TimeFromMicros(row[4]);
  return p;
}

}  // namespace

absl::Status PgStore::InsertContent(const ContentRecord& c, const AuditRecord& audit) {
  return pool_->Run("insert_content", "storing content", [&](PgTx& tx) -> absl::Status {
    const int64_t newest = tx.Exec1(sql::kLockChannel, c.channel)[0].as<int64_t>();
    if (c.version <= newest) {
      return absl::FailedPreconditionError(
          absl::StrCat("channel ", c.channel, " already has version ", newest, "; version ",
                       c.version, " must be above it"));
    }
    tx.Exec(sql::kInsertContent, c.channel, c.version, c.sha256, c.size,
            pqxx::binarystring(c.envelope_json), pqxx::binarystring(c.payload),
            TextArray(c.key_ids), c.description, c.uploaded_by);
    tx.Exec(sql::kBumpChannel, c.channel, c.version);
    AppendAudit(tx, audit);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<ContentRecord>> PgStore::ListContent(const std::string& channel) {
  std::vector<ContentRecord> out;
  RETURN_IF_ERROR(pool_->Run("list_content", "listing content", [&](PgTx& tx) {
    out.clear();
    for (const pqxx::row& row : tx.Exec(sql::kListContent, channel)) {
      out.push_back(ContentFromRow(row));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<ContentRecord> PgStore::GetContent(const std::string& channel, int64_t version) {
  ContentRecord out;
  RETURN_IF_ERROR(pool_->Run("get_content", "reading content", [&](PgTx& tx) -> absl::Status {
    const pqxx::result res = tx.Exec(sql::kGetContent, channel, version);
    if (res.empty()) {
      return absl::NotFoundError(
          absl::StrCat("no content ", channel, " version ", version, "; upload it first"));
    }
    out = ContentFromRow(res[0]);
    out.payload = pqxx::binarystring(res[0][11]).str();
    return absl::OkStatus();
  }));
  return out;
}

absl::Status PgStore::SetEmergencyStop(bool active, const AuditRecord& audit) {
  return pool_->Run("set_emergency_stop", "setting the emergency stop", [&](PgTx& tx) {
    tx.Exec(sql::kSetSetting, kEmergencyStopKey, active ? "true" : "false");
    AppendAudit(tx, audit);
    return absl::OkStatus();
  });
}

absl::Status PgStore::UpsertPin(const PinRecord& pin, const AuditRecord& audit) {
  return pool_->Run("upsert_pin", "setting the pin", [&](PgTx& tx) -> absl::Status {
    RETURN_IF_ERROR(ClaimApproval(tx, audit));
    tx.Exec(sql::kUpsertPin, pin.label_key, pin.label_value, pin.channel, PinPolicyText(pin.policy),
            audit.actor);
    AppendAudit(tx, audit);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<PinRecord>> PgStore::ListPins() {
  std::vector<PinRecord> out;
  RETURN_IF_ERROR(pool_->Run("list_pins", "listing pins", [&](PgTx& tx) -> absl::Status {
    ASSIGN_OR_RETURN(out, PinsFromResult(tx.Exec(sql::kListPins)));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<CatalogData> PgStore::LoadCatalog(
    std::optional<AgentGateCursor> gates_changed_since) {
  CatalogData data;
  // Named apart in the operation metrics: the full read grows with the gated agents, the
  // changes do not.
  const char* operation = gates_changed_since.has_value() ? "load_catalog_changes" : "load_catalog";
  RETURN_IF_ERROR(pool_->Run(operation, "loading the catalog", [&](PgTx& tx) -> absl::Status {
    data = CatalogData{};
    // Taken before the gates are read (each statement reads its own snapshot): a change this
    // read misses is by a transaction at or above it.
    const pqxx::row cursor = tx.Exec1(sql::kAgentGateCursor);
    data.agent_gates_cursor =
        AgentGateCursor{cursor[0].as<std::string>(), cursor[1].as<uint64_t>()};
    for (const pqxx::row& row : tx.Exec(sql::kListContent, "")) {
      data.content.push_back(ContentFromRow(row));
    }
    ASSIGN_OR_RETURN(data.unfinished_rollouts,
                     RolloutsFromResult(tx.Exec(sql::kListRollouts, "", /*active_only=*/true,
                                                FinalStatesParam(), /*limit=*/nullptr)));
    ASSIGN_OR_RETURN(data.pins, PinsFromResult(tx.Exec(sql::kListPins)));
    ASSIGN_OR_RETURN(data.ring_policy, RingPolicyFromRow(tx.Exec1(sql::kLoadRingPolicy)));
    data.roots = RootsFromResult(tx.Exec(sql::kListRoots));
    data.floors = FloorsFromResult(tx.Exec(sql::kListFloors, ""));
    // Transaction ids of another server (a standby promoted with what the old primary had not
    // sent it, a restore) do not order this one's changes: every gate is read.
    const AgentGateCursor& now = data.agent_gates_cursor;
    if (gates_changed_since.has_value() && gates_changed_since->server == now.server &&
        gates_changed_since->position <= now.position) {
      data.agent_gates = AgentGatesFromResult(
          tx.Exec(sql::kListAgentGateChanges, std::to_string(gates_changed_since->position)));
      data.agent_gates_complete = false;
    } else {
      data.agent_gates = AgentGatesFromResult(tx.Exec(sql::kListAgentGates));
    }
    for (const pqxx::row& row : tx.Exec(sql::kListSettings)) {
      const std::string key = row[0].as<std::string>();
      if (key == kEmergencyStopKey) {
        data.emergency_stop = row[1].as<std::string>() == "true";
      } else if (key == kAgentTokenSecretKey) {
        data.agent_token_secret = row[1].as<std::string>();
      }
    }
    return absl::OkStatus();
  }));
  return data;
}

absl::StatusOr<PolicyRecord> PgStore::PutPolicy(const std::string& name,
                                                const std::string& body_json,
                                                const AuditRecord& audit) {
  PolicyRecord out;
  RETURN_IF_ERROR(pool_->Run("put_policy", "storing the policy", [&](PgTx& tx) -> absl::Status {
    tx.Exec(sql::kLockPolicyName, name);
    RETURN_IF_ERROR(ClaimApproval(tx, audit));
    const pqxx::row row = tx.Exec1(sql::kInsertPolicyVersion, name, body_json, audit.actor);
    out.name = name;
    out.version = row[0].as<int64_t>();
    out.body_json = body_json;
    out.created_by = audit.actor;
    out.created_at = TimeFromMicros(row[1]);
    // The audit entry names the version it created.
    AuditRecord entry = audit;
    nlohmann::json evidence = nlohmann::json::parse(entry.evidence_json, nullptr, false);
    if (evidence.is_object()) {
      evidence["version"] = out.version;
      entry.evidence_json = evidence.dump();
    }
    AppendAudit(tx, entry);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<PolicyRecord> PgStore::GetPolicy(const std::string& name, int64_t version) {
  PolicyRecord out;
  RETURN_IF_ERROR(pool_->Run("get_policy", "reading the policy", [&](PgTx& tx) -> absl::Status {
    const pqxx::result res = tx.Exec(sql::kGetPolicy, name, version);
    if (res.empty()) {
      return absl::NotFoundError(
          version == 0 ? absl::StrCat("no policy named \"", name, "\"; see ringctl policy show")
                       : absl::StrCat("policy ", name, " has no version ", version));
    }
    out = PolicyFromRow(res[0]);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<PolicyRecord>> PgStore::ListPolicies() {
  std::vector<PolicyRecord> out;
  RETURN_IF_ERROR(pool_->Run("list_policies", "listing policies", [&](PgTx& tx) {
    out.clear();
    for (const pqxx::row& row : tx.Exec(sql::kListPolicies)) {
      out.push_back(PolicyFromRow(row));
    }
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace ringwarden

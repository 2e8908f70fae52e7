#include "server/storage/pg_store.h"

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "server/storage/pg_errors.h"

namespace ringwarden {
namespace {

// Timestamps cross the driver as Unix microseconds.
int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromMicros(const pqxx::field& f) { return absl::FromUnixMicros(f.as<int64_t>()); }

// Named statements, prepared once per connection.
struct Statement {
  const char* name;
  const char* sql;
};

#define TS(col) "(extract(epoch from " col ") * 1000000)::bigint"

constexpr char kContentColumns[] =
    "channel, version, sha256, size, convert_from(envelope, 'UTF8'), array_to_string(key_ids, ','), "
    "description, " TS("uploaded_at") ", uploaded_by, completed_at IS NOT NULL, "
    "revoked_at IS NOT NULL";
constexpr char kRolloutColumns[] =
    "id, channel, version, state, coalesce(halted_from, ''), previous_version, revision, "
    "created_by, " TS("created_at") ", " TS("updated_at") ", " TS(
        "stage_started_at") ", policy_name, policy_version, broad_wave, broad_fraction";

const Statement kStatements[] = {
    {"lock_channel",
     "INSERT INTO channels (name) VALUES ($1) ON CONFLICT (name) DO UPDATE SET name = "
     "EXCLUDED.name RETURNING newest_version"},
    {"insert_content",
     "INSERT INTO content (channel, version, sha256, size, envelope, payload, key_ids, "
     "description, uploaded_by) VALUES ($1, $2, $3, $4, $5, $6, string_to_array($7, ','), $8, "
     "$9)"},
    {"bump_channel", "UPDATE channels SET newest_version = $2 WHERE name = $1"},
    {"insert_audit",
     "INSERT INTO audit_log (actor, action, rollout_id, from_state, to_state, reason, evidence) "
     "VALUES ($1, $2, nullif($3, ''), $4, $5, $6, $7::jsonb)"},
    {"insert_rollout",
     "INSERT INTO rollouts (id, channel, version, state, halted_from, previous_version, "
     "created_by, policy_name, policy_version, broad_wave, broad_fraction) VALUES ($1, $2, $3, "
     "$4, nullif($5, ''), $6, $7, $8, $9, $10, $11)"},
    {"update_rollout",
     "UPDATE rollouts SET state = $3, halted_from = nullif($4, ''), revision = revision + 1, "
     "updated_at = now(), stage_started_at = CASE WHEN $5 THEN now() ELSE stage_started_at END, "
     "broad_wave = CASE WHEN $6::int < 0 THEN broad_wave ELSE $6::int END, "
     "broad_fraction = CASE WHEN $7::double precision <= 0 THEN broad_fraction "
     "ELSE $7::double precision END "
     "WHERE id = $1 AND revision = $2"},
    {"complete_content",
     "UPDATE content SET completed_at = now() WHERE channel = $1 AND version = $2 AND "
     "completed_at IS NULL"},
    {"revoke_content",
     "UPDATE content SET revoked_at = now() WHERE channel = $1 AND version = $2 AND "
     "revoked_at IS NULL"},
    {"set_setting",
     "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = "
     "EXCLUDED.value"},
    {"upsert_pin",
     "INSERT INTO pins (label_key, label_value, channel, policy, updated_by) VALUES ($1, $2, $3, "
     "$4, $5) ON CONFLICT (label_key, label_value, channel) DO UPDATE SET policy = "
     "EXCLUDED.policy, updated_by = EXCLUDED.updated_by, updated_at = now()"},
    {"upsert_agent",
     "INSERT INTO agents (agent_id, labels, ring, hostname, enrolled_at) VALUES ($1, $2::jsonb, "
     "$3, $4, to_timestamp($5::double precision / 1e6)) ON CONFLICT (agent_id) DO UPDATE SET "
     "labels = EXCLUDED.labels, ring = EXCLUDED.ring, hostname = EXCLUDED.hostname"},
    {"upsert_apply",
     "INSERT INTO apply_results (agent_id, channel, version, outcome, detail, first_at, last_at) "
     "SELECT $1, $2, $3, $4, $5, to_timestamp($6::double precision / 1e6), "
     "to_timestamp($6::double precision / 1e6) WHERE EXISTS (SELECT 1 FROM agents WHERE "
     "agent_id = $1) ON CONFLICT (agent_id, channel, version, outcome) DO UPDATE SET detail = "
     "EXCLUDED.detail, last_at = greatest(apply_results.last_at, EXCLUDED.last_at), count = "
     "apply_results.count + 1"},
    {"upsert_fetch",
     "INSERT INTO content_fetches (agent_id, channel, version, first_at, last_at) SELECT $1, $2, "
     "$3, to_timestamp($4::double precision / 1e6), to_timestamp($4::double precision / 1e6) "
     "WHERE EXISTS (SELECT 1 FROM agents WHERE agent_id = $1) ON CONFLICT (agent_id, channel, "
     "version) DO UPDATE SET last_at = greatest(content_fetches.last_at, EXCLUDED.last_at), "
     "count = content_fetches.count + 1"},
    {"insert_crash",
     "INSERT INTO crash_reports (agent_id, kind, channel, version, detail, at) SELECT $1, $2, $3, "
     "$4, $5, to_timestamp($6::double precision / 1e6) WHERE EXISTS (SELECT 1 FROM agents WHERE "
     "agent_id = $1)"},
};

#undef TS

void PrepareAll(pqxx::connection& conn) {
  for (const Statement& s : kStatements) {
    conn.prepare(s.name, s.sql);
  }
}

void AppendAudit(pqxx::work& tx, const AuditRecord& a) {
  tx.exec_prepared("insert_audit", a.actor, a.action, a.rollout_id, a.from_state, a.to_state,
                   a.reason, a.evidence_json);
}

std::string FinalStatesSql() { return "('COMPLETED', 'ROLLED_BACK', 'CANCELLED')"; }

ContentRecord ContentFromRow(const pqxx::row& r) {
  ContentRecord c;
  c.channel = r[0].as<std::string>();
  c.version = r[1].as<int64_t>();
  c.sha256 = r[2].as<std::string>();
  c.size = r[3].as<int64_t>();
  c.envelope_json = r[4].as<std::string>();
  const std::string keys = r[5].as<std::string>();
  if (!keys.empty()) {
    c.key_ids = absl::StrSplit(keys, ',');
  }
  c.description = r[6].as<std::string>();
  c.uploaded_at = FromMicros(r[7]);
  c.uploaded_by = r[8].as<std::string>();
  c.completed = r[9].as<bool>();
  c.revoked = r[10].as<bool>();
  return c;
}

absl::StatusOr<RolloutRecord> RolloutFromRow(const pqxx::row& r) {
  RolloutRecord o;
  o.id = r[0].as<std::string>();
  o.channel = r[1].as<std::string>();
  o.version = r[2].as<int64_t>();
  ASSIGN_OR_RETURN(o.position.state, ParseRolloutState(r[3].as<std::string>()));
  const std::string halted_from = r[4].as<std::string>();
  if (!halted_from.empty()) {
    ASSIGN_OR_RETURN(RolloutState from, ParseRolloutState(halted_from));
    o.position.halted_from = from;
  }
  o.previous_version = r[5].as<int64_t>();
  o.revision = r[6].as<int64_t>();
  o.created_by = r[7].as<std::string>();
  o.created_at = FromMicros(r[8]);
  o.updated_at = FromMicros(r[9]);
  o.stage_started_at = FromMicros(r[10]);
  o.policy_name = r[11].as<std::string>();
  o.policy_version = r[12].as<int64_t>();
  o.broad_wave = r[13].as<int>();
  o.broad_fraction = r[14].as<double>();
  return o;
}

absl::StatusOr<std::vector<RolloutRecord>> RolloutsFromResult(const pqxx::result& res) {
  std::vector<RolloutRecord> out;
  out.reserve(res.size());
  for (const auto& row : res) {
    ASSIGN_OR_RETURN(RolloutRecord r, RolloutFromRow(row));
    out.push_back(std::move(r));
  }
  return out;
}

std::string HaltedFromText(const RolloutPosition& p) {
  return p.halted_from.has_value() ? std::string(RolloutStateName(*p.halted_from)) : "";
}

std::string LabelsJson(const std::map<std::string, std::string>& labels) {
  return nlohmann::json(labels).dump();
}

absl::Status ApplyChange(pqxx::work& tx, const RolloutChange& change, const std::string& channel,
                         int64_t version) {
  if (change.mark_completed || change.revoke_version) {
    // Serializes with rollout creation, which checks completed and revoked versions.
    tx.exec_params("SELECT 1 FROM channels WHERE name = $1 FOR UPDATE", channel);
  }
  const pqxx::result updated =
      tx.exec_prepared("update_rollout", change.rollout_id, change.expected_revision,
                       std::string(RolloutStateName(change.to.state)), HaltedFromText(change.to),
                       change.stage_changed, change.broad_wave, change.broad_fraction);
  if (updated.affected_rows() != 1) {
    return absl::AbortedError(absl::StrCat("rollout ", change.rollout_id,
                                           " changed concurrently (expected revision ",
                                           change.expected_revision, "); re-read and retry"));
  }
  if (change.mark_completed) {
    tx.exec_prepared("complete_content", channel, version);
  }
  if (change.revoke_version) {
    tx.exec_prepared("revoke_content", channel, version);
  }
  AppendAudit(tx, change.audit);
  return absl::OkStatus();
}

}  // namespace

PgStore::PgStore(std::string conninfo, int pool_size)
    : conninfo_(std::move(conninfo)), pool_size_(std::max(1, pool_size)) {}

PgStore::~PgStore() = default;

absl::StatusOr<std::unique_ptr<pqxx::connection>> PgStore::Acquire() {
  {
    absl::MutexLock lock(&mu_);
    auto has_idle_or_room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || open_ < pool_size_;
    };
    mu_.Await(absl::Condition(&has_idle_or_room));
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return conn;
    }
    ++open_;
  }
  try {
    auto conn = std::make_unique<pqxx::connection>(conninfo_);
    PrepareAll(*conn);
    return conn;
  } catch (const std::exception& e) {
    absl::MutexLock lock(&mu_);
    --open_;
    return PgErrorToStatus(e, "connecting to the database");
  }
}

void PgStore::Release(std::unique_ptr<pqxx::connection> conn) {
  absl::MutexLock lock(&mu_);
  if (conn != nullptr && conn->is_open()) {
    idle_.push_back(std::move(conn));
  } else {
    --open_;
  }
}

absl::Status PgStore::Run(const char* operation, const char* what,
                          const std::function<absl::Status(pqxx::work&)>& body) {
  const absl::Time start = absl::Now();
  absl::Status last = RunWithRetries(what, body);
  if (StoreObserver* observer = observer_.load(); observer != nullptr) {
    observer->OnOperation(operation, absl::Now() - start, last.code());
  }
  return last;
}

absl::Status PgStore::RunWithRetries(const char* what,
                                     const std::function<absl::Status(pqxx::work&)>& body) {
  absl::Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    ASSIGN_OR_RETURN(std::unique_ptr<pqxx::connection> conn, Acquire());
    absl::Status status;
    try {
      pqxx::work tx(*conn);
      status = body(tx);
      if (status.ok()) {
        tx.commit();
      }
    } catch (const std::exception& e) {
      status = PgErrorToStatus(e, what);
    }
    if (absl::IsUnavailable(status)) {
      conn.reset();  // drop the broken connection
    }
    Release(std::move(conn));
    if (!absl::IsAborted(status) && !absl::IsUnavailable(status)) {
      return status;
    }
    last = status;
  }
  return last;
}

absl::Status PgStore::Ping() {
  return Run("ping", "pinging the database", [](pqxx::work& tx) {
    tx.exec1("SELECT 1");
    return absl::OkStatus();
  });
}

absl::Status PgStore::InsertContent(const ContentRecord& c, const AuditRecord& audit) {
  return Run("insert_content", "storing content", [&](pqxx::work& tx) -> absl::Status {
    // The upsert takes the channel row lock, serializing uploads per channel.
    const int64_t newest = tx.exec_prepared1("lock_channel", c.channel)[0].as<int64_t>();
    if (c.version <= newest) {
      return absl::FailedPreconditionError(
          absl::StrCat("channel ", c.channel, " already has version ", newest, "; version ",
                       c.version, " must be above it"));
    }
    tx.exec_prepared("insert_content", c.channel, c.version, c.sha256, c.size,
                     pqxx::binarystring(c.envelope_json), pqxx::binarystring(c.payload),
                     absl::StrJoin(c.key_ids, ","), c.description, c.uploaded_by);
    tx.exec_prepared("bump_channel", c.channel, c.version);
    AppendAudit(tx, audit);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<ContentRecord>> PgStore::ListContent(const std::string& channel) {
  std::vector<ContentRecord> out;
  RETURN_IF_ERROR(Run("list_content", "listing content", [&](pqxx::work& tx) {
    const pqxx::result res = tx.exec_params(
        absl::StrCat("SELECT ", kContentColumns,
                     " FROM content WHERE $1 = '' OR channel = $1 ORDER BY channel, version DESC"),
        channel);
    out.clear();
    for (const auto& row : res) {
      out.push_back(ContentFromRow(row));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<ContentRecord> PgStore::GetContent(const std::string& channel, int64_t version) {
  ContentRecord out;
  RETURN_IF_ERROR(Run("get_content", "reading content", [&](pqxx::work& tx) -> absl::Status {
    const pqxx::result res =
        tx.exec_params(absl::StrCat("SELECT ", kContentColumns,
                                    ", payload FROM content WHERE channel = $1 AND version = $2"),
                       channel, version);
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

absl::Status PgStore::CreateRollout(const NewRollout& create) {
  const RolloutRecord& r = create.rollout;
  return Run("create_rollout", "creating the rollout", [&](pqxx::work& tx) -> absl::Status {
    // Re-check under the channel lock what the caller checked before: a
    // completion or rollback that committed meanwhile must win.
    const pqxx::result check = tx.exec_params(
        "SELECT c.revoked_at IS NOT NULL, (SELECT coalesce(max(version), 0) FROM content WHERE "
        "channel = $1 AND completed_at IS NOT NULL AND revoked_at IS NULL) FROM channels ch JOIN "
        "content c ON c.channel = ch.name AND c.version = $2::bigint WHERE ch.name = $1 "
        "FOR UPDATE OF ch",
        r.channel, r.version);
    if (check.empty()) {
      return absl::NotFoundError(
          absl::StrCat("channel ", r.channel, " has no version ", r.version, "; upload it first"));
    }
    if (check[0][0].as<bool>()) {
      return absl::FailedPreconditionError(absl::StrCat(
          r.channel, " v", r.version, " was revoked by a rollback and can never ship"));
    }
    if (r.version <= check[0][1].as<int64_t>()) {
      return absl::FailedPreconditionError(absl::StrCat(
          r.channel, " v", check[0][1].as<int64_t>(), " already completed; start a newer version"));
    }
    if (create.supersede.has_value()) {
      RETURN_IF_ERROR(ApplyChange(tx, *create.supersede, "", 0));
    }
    try {
      pqxx::subtransaction sub(tx, "insert_rollout");
      sub.exec_prepared("insert_rollout", r.id, r.channel, r.version,
                        std::string(RolloutStateName(r.position.state)), HaltedFromText(r.position),
                        r.previous_version, r.created_by, r.policy_name, r.policy_version,
                        r.broad_wave, r.broad_fraction);
      sub.commit();
    } catch (const pqxx::unique_violation&) {
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
  RETURN_IF_ERROR(Run("get_rollout", "reading the rollout", [&](pqxx::work& tx) -> absl::Status {
    const pqxx::result res = tx.exec_params(
        absl::StrCat("SELECT ", kRolloutColumns, " FROM rollouts WHERE id = $1"), id);
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
  RETURN_IF_ERROR(Run("list_rollouts", "listing rollouts", [&](pqxx::work& tx) -> absl::Status {
    const pqxx::result res = tx.exec_params(
        absl::StrCat("SELECT ", kRolloutColumns,
                     " FROM rollouts WHERE ($1 = '' OR channel = $1) AND (NOT $2 OR state NOT IN ",
                     FinalStatesSql(), ") ORDER BY created_at DESC, id LIMIT $3"),
        channel, active_only, limit);
    ASSIGN_OR_RETURN(out, RolloutsFromResult(res));
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
  return Run("change_rollout", "changing the rollout", [&](pqxx::work& tx) -> absl::Status {
    const pqxx::result res =
        tx.exec_params("SELECT channel, version FROM rollouts WHERE id = $1", change.rollout_id);
    if (res.empty()) {
      return absl::NotFoundError(absl::StrCat("no rollout with id \"", change.rollout_id, "\""));
    }
    return ApplyChange(tx, change, res[0][0].as<std::string>(), res[0][1].as<int64_t>());
  });
}

absl::StatusOr<std::vector<RingProgressRecord>> PgStore::RingProgress(
    const RolloutRecord& rollout) {
  // targeted: agents of the ring not pinned away from "latest" on this channel.
  // applied: their last report has the version in effect. healthy: applied,
  // heard from after the apply, and no crash report for the version since.
  // failed: reported a failed apply of the version.
  static constexpr char kSql[] = R"sql(
WITH targeted AS (
  SELECT a.agent_id, a.ring, a.last_seen_at FROM agents a
  WHERE NOT EXISTS (
    SELECT 1 FROM pins p WHERE p.channel = $1 AND p.policy <> 'latest'
      AND a.labels ->> p.label_key = p.label_value)
), applied AS (
  SELECT t.agent_id, t.ring, t.last_seen_at, r.first_at FROM targeted t
  JOIN agent_versions v ON v.agent_id = t.agent_id AND v.channel = $1 AND v.version = $2
  LEFT JOIN apply_results r ON r.agent_id = t.agent_id AND r.channel = $1 AND r.version = $2
    AND r.outcome = 'APPLIED'
)
SELECT ring,
  (SELECT count(*) FROM targeted t WHERE t.ring = rings.ring),
  (SELECT count(*) FROM applied a WHERE a.ring = rings.ring),
  (SELECT count(*) FROM applied a WHERE a.ring = rings.ring
     AND a.last_seen_at >= coalesce(a.first_at, '-infinity')
     AND NOT EXISTS (SELECT 1 FROM crash_reports c WHERE c.agent_id = a.agent_id
       AND c.channel = $1 AND c.version = $2)),
  (SELECT count(DISTINCT f.agent_id) FROM apply_results f JOIN targeted t USING (agent_id)
     WHERE t.ring = rings.ring AND f.channel = $1 AND f.version = $2
       AND f.outcome NOT IN ('APPLIED', 'REVERTED'))
FROM (VALUES ('canary', 0), ('early', 1), ('broad', 2)) AS rings (ring, ord)
ORDER BY ord)sql";
  std::vector<RingProgressRecord> out;
  RETURN_IF_ERROR(
      Run("ring_progress", "counting ring progress", [&](pqxx::work& tx) -> absl::Status {
        out.clear();
        for (const auto& row : tx.exec_params(kSql, rollout.channel, rollout.version)) {
          RingProgressRecord p;
          ASSIGN_OR_RETURN(p.ring, ParseRing(row[0].as<std::string>()));
          p.targeted = row[1].as<int64_t>();
          p.applied = row[2].as<int64_t>();
          p.healthy = row[3].as<int64_t>();
          p.failed = row[4].as<int64_t>();
          out.push_back(p);
        }
        return absl::OkStatus();
      }));
  return out;
}

absl::Status PgStore::SetEmergencyStop(bool active, const AuditRecord& audit) {
  return Run("set_emergency_stop", "setting the emergency stop", [&](pqxx::work& tx) {
    tx.exec_prepared("set_setting", "emergency_stop", active ? "true" : "false");
    AppendAudit(tx, audit);
    return absl::OkStatus();
  });
}

absl::Status PgStore::UpsertPin(const PinRecord& pin, const AuditRecord& audit) {
  return Run("upsert_pin", "setting the pin", [&](pqxx::work& tx) {
    tx.exec_prepared("upsert_pin", pin.label_key, pin.label_value, pin.channel,
                     PinPolicyText(pin.policy), audit.actor);
    AppendAudit(tx, audit);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<PinRecord>> PgStore::ListPins() {
  std::vector<PinRecord> out;
  RETURN_IF_ERROR(Run("list_pins", "listing pins", [&](pqxx::work& tx) -> absl::Status {
    out.clear();
    for (const auto& row :
         tx.exec("SELECT label_key, label_value, channel, policy FROM pins ORDER BY 1, 2, 3")) {
      PinRecord p;
      p.label_key = row[0].as<std::string>();
      p.label_value = row[1].as<std::string>();
      p.channel = row[2].as<std::string>();
      ASSIGN_OR_RETURN(p.policy, ParsePinPolicy(row[3].as<std::string>()));
      out.push_back(std::move(p));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<AuditRecord>> PgStore::ListAudit(const std::string& rollout_id,
                                                            int limit) {
  std::vector<AuditRecord> out;
  RETURN_IF_ERROR(Run("list_audit", "reading the audit log", [&](pqxx::work& tx) {
    out.clear();
    const pqxx::result res = tx.exec_params(
        "SELECT id, (extract(epoch from at) * 1000000)::bigint, actor, action, "
        "coalesce(rollout_id, ''), from_state, to_state, reason, evidence::text FROM audit_log "
        "WHERE $1 = '' OR rollout_id = $1 ORDER BY id DESC LIMIT $2",
        rollout_id, limit);
    for (const auto& row : res) {
      AuditRecord a;
      a.id = row[0].as<int64_t>();
      a.at = FromMicros(row[1]);
      a.actor = row[2].as<std::string>();
      a.action = row[3].as<std::string>();
      a.rollout_id = row[4].as<std::string>();
      a.from_state = row[5].as<std::string>();
      a.to_state = row[6].as<std::string>();
      a.reason = row[7].as<std::string>();
      a.evidence_json = row[8].as<std::string>();
      out.push_back(std::move(a));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::pair<std::vector<AgentRecord>, int64_t>> PgStore::ListAgents(
    std::optional<Ring> ring, int limit) {
  std::vector<AgentRecord> agents;
  int64_t total = 0;
  const std::string ring_name = ring.has_value() ? std::string(RingName(*ring)) : "";
  RETURN_IF_ERROR(Run("list_agents", "listing agents", [&](pqxx::work& tx) -> absl::Status {
    agents.clear();
    total = tx.exec_params1("SELECT count(*) FROM agents WHERE $1 = '' OR ring = $1", ring_name)[0]
                .as<int64_t>();
    const pqxx::result res = tx.exec_params(
        "SELECT a.agent_id, a.ring, a.labels::text, a.hostname, "
        "(extract(epoch from a.enrolled_at) * 1000000)::bigint, "
        "coalesce((extract(epoch from a.last_seen_at) * 1000000)::bigint, 0), "
        "coalesce((SELECT json_object_agg(v.channel, v.version) FROM agent_versions v "
        "WHERE v.agent_id = a.agent_id)::text, '{}') "
        "FROM agents a WHERE $1 = '' OR a.ring = $1 ORDER BY a.agent_id LIMIT $2",
        ring_name, limit);
    for (const auto& row : res) {
      AgentRecord a;
      a.agent_id = row[0].as<std::string>();
      ASSIGN_OR_RETURN(a.ring, ParseRing(row[1].as<std::string>()));
      a.labels =
          nlohmann::json::parse(row[2].as<std::string>()).get<std::map<std::string, std::string>>();
      a.hostname = row[3].as<std::string>();
      a.enrolled_at = FromMicros(row[4]);
      if (row[5].as<int64_t>() != 0) {
        a.last_seen_at = FromMicros(row[5]);
      }
      a.versions =
          nlohmann::json::parse(row[6].as<std::string>()).get<std::map<std::string, int64_t>>();
      agents.push_back(std::move(a));
    }
    return absl::OkStatus();
  }));
  return std::make_pair(std::move(agents), total);
}

absl::StatusOr<CatalogData> PgStore::LoadCatalog() {
  CatalogData data;
  RETURN_IF_ERROR(Run("load_catalog", "loading the catalog", [&](pqxx::work& tx) -> absl::Status {
    data = CatalogData{};
    for (const auto& row : tx.exec(
             absl::StrCat("SELECT ", kContentColumns, " FROM content ORDER BY channel, version"))) {
      data.content.push_back(ContentFromRow(row));
    }
    ASSIGN_OR_RETURN(
        data.unfinished_rollouts,
        RolloutsFromResult(tx.exec(absl::StrCat(
            "SELECT ", kRolloutColumns, " FROM rollouts WHERE state NOT IN ", FinalStatesSql()))));
    for (const auto& row :
         tx.exec("SELECT label_key, label_value, channel, policy FROM pins ORDER BY label_key, "
                 "label_value, channel")) {
      PinRecord p{row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(), {}};
      ASSIGN_OR_RETURN(p.policy, ParsePinPolicy(row[3].as<std::string>()));
      data.pins.push_back(std::move(p));
    }
    const pqxx::row policy = tx.exec1(
        "SELECT canary_buckets, early_buckets, overrides::text, seed FROM ring_policy WHERE id = "
        "1");
    data.ring_policy.canary_buckets = policy[0].as<int>();
    data.ring_policy.early_buckets = policy[1].as<int>();
    data.ring_policy.overrides.clear();
    for (const auto& o : nlohmann::json::parse(policy[2].as<std::string>())) {
      LabelOverride lo;
      lo.key = o.at("key").get<std::string>();
      lo.value = o.at("value").get<std::string>();
      ASSIGN_OR_RETURN(lo.ring, ParseRing(o.at("ring").get<std::string>()));
      data.ring_policy.overrides.push_back(std::move(lo));
    }
    data.ring_policy.seed = policy[3].as<std::string>();
    for (const auto& row : tx.exec("SELECT key, value FROM settings")) {
      const std::string key = row[0].as<std::string>();
      if (key == "emergency_stop") {
        data.emergency_stop = row[1].as<std::string>() == "true";
      } else if (key == "agent_token_secret") {
        data.agent_token_secret = row[1].as<std::string>();
      }
    }
    return absl::OkStatus();
  }));
  return data;
}

absl::Status PgStore::WriteTelemetry(const TelemetryRows& rows) {
  return Run("write_telemetry", "writing telemetry", [&](pqxx::work& tx) {
    for (const AgentUpsert& a : rows.agents) {
      tx.exec_prepared("upsert_agent", a.agent_id, LabelsJson(a.labels),
                       std::string(RingName(a.ring)), a.hostname, Micros(a.at));
    }
    if (!rows.heartbeats.empty()) {
      // Heartbeats are the bulk of the traffic: stream them into a temporary
      // table with COPY, then merge with two set-based statements.
      tx.exec0(
          "CREATE TEMP TABLE IF NOT EXISTS hb_in (agent_id text, channel text, version bigint, "
          "boot_id text, at_us bigint) ON COMMIT DELETE ROWS");
      {
        pqxx::stream_to stream(
            tx, "hb_in",
            std::vector<std::string>{"agent_id", "channel", "version", "boot_id", "at_us"});
        for (const HeartbeatRow& h : rows.heartbeats) {
          if (h.versions.empty()) {
            stream << std::make_tuple(h.agent_id, std::string(), int64_t{-1}, h.boot_id,
                                      Micros(h.at));
          }
          for (const auto& [channel, version] : h.versions) {
            stream << std::make_tuple(h.agent_id, channel, version, h.boot_id, Micros(h.at));
          }
        }
        stream.complete();
      }
      tx.exec0(R"sql(
UPDATE agents a SET last_seen_at = h.at, boot_id = h.boot_id
FROM (SELECT DISTINCT ON (agent_id) agent_id, boot_id, to_timestamp(at_us / 1e6) AS at
      FROM hb_in ORDER BY agent_id, at_us DESC) h
WHERE a.agent_id = h.agent_id AND (a.last_seen_at IS NULL OR a.last_seen_at <= h.at))sql");
      tx.exec0(R"sql(
INSERT INTO agent_versions (agent_id, channel, version, since, reported_at)
SELECT DISTINCT ON (h.agent_id, h.channel) h.agent_id, h.channel, h.version,
       to_timestamp(h.at_us / 1e6), to_timestamp(h.at_us / 1e6)
FROM hb_in h JOIN agents a USING (agent_id)
WHERE h.version >= 0
ORDER BY h.agent_id, h.channel, h.at_us DESC
ON CONFLICT (agent_id, channel) DO UPDATE SET
  version = EXCLUDED.version,
  since = CASE WHEN agent_versions.version = EXCLUDED.version THEN agent_versions.since
               ELSE EXCLUDED.since END,
  reported_at = EXCLUDED.reported_at
WHERE agent_versions.reported_at <= EXCLUDED.reported_at)sql");
    }
    for (const ApplyRow& a : rows.applies) {
      tx.exec_prepared("upsert_apply", a.agent_id, a.channel, a.version, a.outcome, a.detail,
                       Micros(a.at));
    }
    for (const FetchRow& f : rows.fetches) {
      tx.exec_prepared("upsert_fetch", f.agent_id, f.channel, f.version, Micros(f.at));
    }
    for (const CrashRow& c : rows.crashes) {
      tx.exec_prepared("insert_crash", c.agent_id, c.kind, c.channel, c.version, c.detail,
                       Micros(c.at));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<PolicyRecord> PgStore::PutPolicy(const std::string& name,
                                                const std::string& body_json,
                                                const AuditRecord& audit) {
  PolicyRecord out;
  RETURN_IF_ERROR(Run("put_policy", "storing the policy", [&](pqxx::work& tx) {
    // Serialize writers of one policy name so versions stay dense.
    tx.exec_params("SELECT pg_advisory_xact_lock(hashtext('policy:' || $1))", name);
    const pqxx::row row = tx.exec_params1(
        "INSERT INTO rollout_policies (name, version, body, created_by) SELECT $1, "
        "coalesce(max(version), 0) + 1, $2::jsonb, $3 FROM rollout_policies WHERE name = $1 "
        "RETURNING version, (extract(epoch from created_at) * 1000000)::bigint",
        name, body_json, audit.actor);
    out.name = name;
    out.version = row[0].as<int64_t>();
    out.body_json = body_json;
    out.created_by = audit.actor;
    out.created_at = FromMicros(row[1]);
    AuditRecord a = audit;
    nlohmann::json evidence = nlohmann::json::parse(a.evidence_json, nullptr, false);
    if (evidence.is_object()) {
      evidence["version"] = out.version;
      a.evidence_json = evidence.dump();
    }
    AppendAudit(tx, a);
    return absl::OkStatus();
  }));
  return out;
}

namespace {

PolicyRecord PolicyFromRow(const pqxx::row& row) {
  PolicyRecord p;
  p.name = row[0].as<std::string>();
  p.version = row[1].as<int64_t>();
  p.body_json = row[2].as<std::string>();
  p.created_by = row[3].as<std::string>();
  p.created_at = FromMicros(row[4]);
  return p;
}

constexpr char kPolicyColumns[] =
    "name, version, body::text, created_by, (extract(epoch from created_at) * 1000000)::bigint";

std::optional<absl::Time> OptionalMicros(const pqxx::field& f) {
  if (f.is_null()) {
    return std::nullopt;
  }
  return FromMicros(f);
}

}  // namespace

absl::StatusOr<PolicyRecord> PgStore::GetPolicy(const std::string& name, int64_t version) {
  PolicyRecord out;
  RETURN_IF_ERROR(Run("get_policy", "reading the policy", [&](pqxx::work& tx) -> absl::Status {
    const pqxx::result res = tx.exec_params(
        absl::StrCat(
            "SELECT ", kPolicyColumns,
            " FROM rollout_policies WHERE name = $1 AND ($2::bigint = 0 OR version = $2::bigint) "
            "ORDER BY version DESC LIMIT 1"),
        name, version);
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
  RETURN_IF_ERROR(Run("list_policies", "listing policies", [&](pqxx::work& tx) {
    out.clear();
    for (const auto& row :
         tx.exec(absl::StrCat("SELECT DISTINCT ON (name) ", kPolicyColumns,
                              " FROM rollout_policies ORDER BY name, version DESC"))) {
      out.push_back(PolicyFromRow(row));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<RolloutHealthRows> PgStore::LoadRolloutHealth(const RolloutRecord& rollout,
                                                             absl::Time since) {
  RolloutHealthRows out;
  RETURN_IF_ERROR(
      Run("load_rollout_health", "reading rollout health", [&](pqxx::work& tx) -> absl::Status {
        out = RolloutHealthRows{};
        const pqxx::result agents = tx.exec_params(
            "SELECT a.agent_id, a.ring, coalesce(v.version, 0), "
            "(extract(epoch from v.since) * 1000000)::bigint, "
            "(extract(epoch from a.last_seen_at) * 1000000)::bigint "
            "FROM agents a LEFT JOIN agent_versions v ON v.agent_id = a.agent_id AND v.channel = "
            "$1 "
            "WHERE NOT EXISTS (SELECT 1 FROM pins p WHERE p.channel = $1 AND p.policy <> 'latest' "
            "AND a.labels ->> p.label_key = p.label_value)",
            rollout.channel);
        out.agents.reserve(agents.size());
        for (const auto& row : agents) {
          AgentHealthRow a;
          a.agent_id = row[0].as<std::string>();
          ASSIGN_OR_RETURN(a.ring, ParseRing(row[1].as<std::string>()));
          a.version = row[2].as<int64_t>();
          a.since = OptionalMicros(row[3]);
          a.last_seen = OptionalMicros(row[4]);
          out.agents.push_back(std::move(a));
        }
        for (const auto& row : tx.exec_params(
                 "SELECT agent_id, outcome, (extract(epoch from first_at) * 1000000)::bigint "
                 "FROM apply_results WHERE channel = $1 AND version = $2",
                 rollout.channel, rollout.version)) {
          ApplyRow a;
          a.agent_id = row[0].as<std::string>();
          a.channel = rollout.channel;
          a.version = rollout.version;
          a.outcome = row[1].as<std::string>();
          a.at = FromMicros(row[2]);
          out.applies.push_back(std::move(a));
        }
        for (const auto& row :
             tx.exec_params("SELECT agent_id, (extract(epoch from first_at) * 1000000)::bigint "
                            "FROM content_fetches WHERE channel = $1 AND version = $2",
                            rollout.channel, rollout.version)) {
          out.fetches.push_back(FetchRow{row[0].as<std::string>(), rollout.channel, rollout.version,
                                         FromMicros(row[1])});
        }
        for (const auto& row : tx.exec_params(
                 "SELECT agent_id, kind, version, (extract(epoch from at) * 1000000)::bigint "
                 "FROM crash_reports WHERE channel = $1 AND version IN ($2, $3) "
                 "AND at >= to_timestamp($4::double precision / 1e6)",
                 rollout.channel, rollout.version, rollout.previous_version, Micros(since))) {
          CrashRow c;
          c.agent_id = row[0].as<std::string>();
          c.kind = row[1].as<std::string>();
          c.channel = rollout.channel;
          c.version = row[2].as<int64_t>();
          c.at = FromMicros(row[3]);
          out.crashes.push_back(std::move(c));
        }
        return absl::OkStatus();
      }));
  return out;
}

absl::Status PgStore::UpsertDecision(const DecisionRecord& d) {
  return Run("upsert_decision", "recording the decision", [&](pqxx::work& tx) {
    tx.exec_params(
        "INSERT INTO rollout_decisions (rollout_id, ring, kind, reason, gate_passed, summary, "
        "evidence, evaluated_at, revision) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, "
        "to_timestamp($8::double precision / 1e6), $9::bigint) ON CONFLICT (rollout_id, ring) "
        "DO UPDATE SET kind = EXCLUDED.kind, reason = EXCLUDED.reason, gate_passed = "
        "EXCLUDED.gate_passed, summary = EXCLUDED.summary, evidence = EXCLUDED.evidence, "
        "evaluated_at = EXCLUDED.evaluated_at, revision = EXCLUDED.revision",
        d.rollout_id, std::string(RingName(d.ring)), d.kind, d.reason, d.gate_passed, d.summary,
        d.evidence_json, Micros(d.evaluated_at), d.revision);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<DecisionRecord>> PgStore::ListDecisions(const std::string& rollout_id) {
  std::vector<DecisionRecord> out;
  RETURN_IF_ERROR(Run("list_decisions", "reading decisions", [&](pqxx::work& tx) -> absl::Status {
    out.clear();
    for (const auto& row : tx.exec_params(
             "SELECT ring, kind, reason, gate_passed, summary, evidence::text, "
             "(extract(epoch from evaluated_at) * 1000000)::bigint, revision FROM "
             "rollout_decisions "
             "WHERE rollout_id = $1 ORDER BY CASE ring WHEN 'canary' THEN 0 WHEN 'early' THEN 1 "
             "ELSE 2 END",
             rollout_id)) {
      DecisionRecord d;
      d.rollout_id = rollout_id;
      ASSIGN_OR_RETURN(d.ring, ParseRing(row[0].as<std::string>()));
      d.kind = row[1].as<std::string>();
      d.reason = row[2].as<std::string>();
      d.gate_passed = row[3].as<bool>();
      d.summary = row[4].as<std::string>();
      d.evidence_json = row[5].as<std::string>();
      d.evaluated_at = FromMicros(row[6]);
      d.revision = row[7].as<int64_t>();
      out.push_back(std::move(d));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<FleetStats> PgStore::LoadFleetStats() {
  FleetStats stats;
  RETURN_IF_ERROR(Run("fleet_stats", "loading fleet statistics", [&](pqxx::work& tx) {
    stats = FleetStats{};
    for (const auto& row : tx.exec("SELECT channel, state, count(*) FROM rollouts GROUP BY 1, 2")) {
      stats.rollouts[{row[0].as<std::string>(), row[1].as<std::string>()}] = row[2].as<int64_t>();
    }
    for (const auto& row : tx.exec("SELECT ring, count(*) FROM agents GROUP BY 1")) {
      stats.agents_by_ring[row[0].as<std::string>()] = row[1].as<int64_t>();
    }
    for (const auto& row :
         tx.exec("SELECT channel, version, count(*) FROM agent_versions GROUP BY 1, 2")) {
      stats.agents_by_version[{row[0].as<std::string>(), row[1].as<int64_t>()}] =
          row[2].as<int64_t>();
    }
    stats.agents_seen_5m =
        tx.exec1("SELECT count(*) FROM agents WHERE last_seen_at > now() - interval '5 minutes'")[0]
            .as<int64_t>();
    return absl::OkStatus();
  }));
  return stats;
}

}  // namespace ringwarden

// PgStore's telemetry role: one batch of agent rows per transaction.
#include <nlohmann/json.hpp>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "common/names.h"
#include "common/outcomes.h"
#include "common/status_macros.h"
#include "server/postgres/pg_pool_internal.h"
#include "server/postgres/pg_store.h"
#include "server/postgres/pg_store_internal.h"
#include "server/postgres/sql.h"

namespace ringwarden {
namespace {

// CheckStorable refuses words that could not be read back (ParseApplyOutcome
// and ParseCrashKind reject kUnspecified), so one bad row never poisons reads.
absl::Status CheckStorable(const TelemetryRows& rows) {
  for (const ApplyRow& a : rows.applies) {
    if (a.outcome == ApplyOutcome::kUnspecified) {
      return absl::InvalidArgumentError(
          absl::StrCat("apply result of agent ", a.agent_id, " has no outcome"));
    }
  }
  for (const CrashRow& c : rows.crashes) {
    if (c.kind == CrashKind::kUnspecified) {
      return absl::InvalidArgumentError(
          absl::StrCat("crash report of agent ", c.agent_id, " has no kind"));
    }
  }
  for (const HealthEventRow& h : rows.health_events) {
    if (absl::Status s = ValidateHealthEventKind(h.kind); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("health event of agent ", h.agent_id, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

// StageHeartbeats streams the heartbeats into the session's staging table with
// COPY; a heartbeat naming no channel is staged once with version -1.
void StageHeartbeats(PgTx& tx, const std::vector<HeartbeatRow>& heartbeats) {
  tx.ExecUnprepared(sql::kCreateHeartbeatStaging);
  pqxx::stream_to stream(tx.work(), sql::kHeartbeatStagingTable);
  for (const HeartbeatRow& h : heartbeats) {
    if (h.versions.empty()) {
      stream << std::make_tuple(h.agent_id, std::string(), int64_t{-1}, h.boot_id, ToMicros(h.at));
    }
    for (const auto& [channel, version] : h.versions) {
      stream << std::make_tuple(h.agent_id, channel, version, h.boot_id, ToMicros(h.at));
    }
  }
  stream.complete();
}

}  // namespace

absl::Status PgStore::WriteTelemetry(const TelemetryRows& rows) {
  return pool_->Run("write_telemetry", "writing telemetry", [&](PgTx& tx) -> absl::Status {
    RETURN_IF_ERROR(CheckStorable(rows));
    for (const AgentUpsert& a : rows.agents) {
      tx.Exec(sql::kUpsertAgent, a.agent_id, nlohmann::json(a.labels).dump(),
              std::string(RingName(a.ring)), a.hostname, ToMicros(a.at));
    }
    if (!rows.heartbeats.empty()) {
      StageHeartbeats(tx, rows.heartbeats);
      tx.Exec(sql::kMergeHeartbeatsIntoAgents);
      tx.Exec(sql::kMergeHeartbeatsIntoVersions);
    }
    for (const ApplyRow& a : rows.applies) {
      tx.Exec(sql::kUpsertApply, a.agent_id, a.channel, a.version,
              std::string(ApplyOutcomeName(a.outcome)), a.detail, ToMicros(a.at));
    }
    for (const FetchRow& f : rows.fetches) {
      tx.Exec(sql::kUpsertFetch, f.agent_id, f.channel, f.version, ToMicros(f.at));
    }
    for (const CrashRow& c : rows.crashes) {
      tx.Exec(sql::kInsertCrash, c.agent_id, std::string(CrashKindName(c.kind)), c.channel,
              c.version, c.detail, ToMicros(c.at));
    }
    for (const HealthEventRow& h : rows.health_events) {
      tx.Exec(sql::kInsertHealthEvent, h.agent_id, h.kind, h.channel, h.version, h.detail,
              ToMicros(h.at));
    }
    return absl::OkStatus();
  });
}

}  // namespace ringwarden

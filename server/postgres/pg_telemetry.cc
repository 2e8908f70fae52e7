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

// Day partitions are kept ready this many days ahead of today.
constexpr int kTelemetryDaysAhead = 2;

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

// StageRows streams the applies, downloads, crash reports and health events
// into their staging tables; what was staged is then moved by one statement each.
void StageRows(PgTx& tx, const TelemetryRows& rows) {
  tx.ExecUnprepared(sql::kCreateTelemetryStaging);
  if (!rows.applies.empty()) {
    pqxx::stream_to stream(tx.work(), sql::kApplyStagingTable);
    int64_t n = 0;
    for (const ApplyRow& a : rows.applies) {
      stream << std::make_tuple(n++, a.agent_id, a.channel, a.version,
                                std::string(ApplyOutcomeName(a.outcome)), a.detail, ToMicros(a.at));
    }
    stream.complete();
  }
  if (!rows.fetches.empty()) {
    pqxx::stream_to stream(tx.work(), sql::kFetchStagingTable);
    for (const FetchRow& f : rows.fetches) {
      stream << std::make_tuple(f.agent_id, f.channel, f.version, ToMicros(f.at));
    }
    stream.complete();
  }
  if (!rows.crashes.empty()) {
    pqxx::stream_to stream(tx.work(), sql::kCrashStagingTable);
    for (const CrashRow& c : rows.crashes) {
      stream << std::make_tuple(c.agent_id, std::string(CrashKindName(c.kind)), c.channel,
                                c.version, c.detail, ToMicros(c.at));
    }
    stream.complete();
  }
  if (!rows.health_events.empty()) {
    pqxx::stream_to stream(tx.work(), sql::kHealthEventStagingTable);
    for (const HealthEventRow& h : rows.health_events) {
      stream << std::make_tuple(h.agent_id, h.kind, h.channel, h.version, h.detail, ToMicros(h.at));
    }
    stream.complete();
  }
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
    if (rows.applies.empty() && rows.fetches.empty() && rows.crashes.empty() &&
        rows.health_events.empty()) {
      return absl::OkStatus();
    }
    StageRows(tx, rows);
    if (!rows.applies.empty()) tx.Exec(sql::kMergeApplies);
    if (!rows.fetches.empty()) tx.Exec(sql::kMergeFetches);
    if (!rows.crashes.empty()) tx.Exec(sql::kMergeCrashes);
    if (!rows.health_events.empty()) tx.Exec(sql::kMergeHealthEvents);
    return absl::OkStatus();
  });
}

absl::StatusOr<TelemetryUpkeep> PgStore::MaintainTelemetry(absl::Duration retention,
                                                           absl::Time now) {
  if (retention < absl::Hours(24)) {
    return absl::InvalidArgumentError("telemetry retention must be at least one day");
  }
  TelemetryUpkeep out;
  RETURN_IF_ERROR(pool_->Run(
      "maintain_telemetry", "maintaining telemetry partitions", [&](PgTx& tx) -> absl::Status {
        const pqxx::row row = tx.Exec1(sql::kMaintainTelemetry, absl::ToInt64Seconds(retention),
                                       kTelemetryDaysAhead, ToMicros(now));
        out.partitions_created = row[0].as<int>();
        out.partitions_dropped = row[1].as<int>();
        out.rows_expired = row[2].as<int64_t>();
        return absl::OkStatus();
      }));
  return out;
}

}  // namespace ringwarden

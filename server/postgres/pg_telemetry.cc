// PgStore's telemetry role: one batch of agent rows per transaction.
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <tuple>
#include <vector>

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

// StageAndMerge streams `rows` with COPY into staging table `table` (`stage`
// writes one row's tuples to the stream), then runs `merges`, which move the
// staged rows into their tables. No rows, no work.
template <typename Row, typename Stage>
void StageAndMerge(PgTx& tx, const char* table, const std::vector<Row>& rows, Stage stage,
                   std::initializer_list<const sql::Statement*> merges) {
  if (rows.empty()) {
    return;
  }
  pqxx::stream_to stream(tx.work(), table);
  for (const Row& row : rows) {
    stage(stream, row);
  }
  stream.complete();
  for (const sql::Statement* merge : merges) {
    tx.Exec(*merge);
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
    if (rows.size() == rows.agents.size()) {
      return absl::OkStatus();
    }
    tx.ExecUnprepared(sql::kCreateTelemetryStaging);
    // A heartbeat naming no channel is staged once with version -1.
    StageAndMerge(tx, sql::kHeartbeatStagingTable, rows.heartbeats,
                  [](pqxx::stream_to& stream, const HeartbeatRow& h) {
                    if (h.versions.empty()) {
                      stream << std::make_tuple(h.agent_id, std::string(), int64_t{-1}, h.boot_id,
                                                ToMicros(h.at));
                    }
                    for (const auto& [channel, version] : h.versions) {
                      stream << std::make_tuple(h.agent_id, channel, version, h.boot_id,
                                                ToMicros(h.at));
                    }
                  },
                  {&sql::kMergeHeartbeatsIntoAgents, &sql::kMergeHeartbeatsIntoVersions});
    StageAndMerge(tx, sql::kApplyStagingTable, rows.applies,
                  [n = int64_t{0}](pqxx::stream_to& stream, const ApplyRow& a) mutable {
                    stream << std::make_tuple(n++, a.agent_id, a.channel, a.version,
                                              std::string(ApplyOutcomeName(a.outcome)), a.detail,
                                              ToMicros(a.at));
                  },
                  {&sql::kMergeApplies});
    StageAndMerge(tx, sql::kFetchStagingTable, rows.fetches,
                  [](pqxx::stream_to& stream, const FetchRow& f) {
                    stream << std::make_tuple(f.agent_id, f.channel, f.version, ToMicros(f.at));
                  },
                  {&sql::kMergeFetches});
    StageAndMerge(tx, sql::kCrashStagingTable, rows.crashes,
                  [](pqxx::stream_to& stream, const CrashRow& c) {
                    stream << std::make_tuple(c.agent_id, std::string(CrashKindName(c.kind)),
                                              c.channel, c.version, c.detail, ToMicros(c.at));
                  },
                  {&sql::kMergeCrashes});
    StageAndMerge(tx, sql::kHealthEventStagingTable, rows.health_events,
                  [](pqxx::stream_to& stream, const HealthEventRow& h) {
                    stream << std::make_tuple(h.agent_id, h.kind, h.channel, h.version, h.detail,
                                              ToMicros(h.at));
                  },
                  {&sql::kMergeHealthEvents});
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

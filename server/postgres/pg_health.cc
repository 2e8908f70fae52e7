// PgStore's health role: the telemetry a rollout is judged on, the agent list
// and the fleet counts the metrics report.
#include <nlohmann/json.hpp>
#include <utility>

#include "common/outcomes.h"
#include "common/status_macros.h"
#include "server/postgres/pg_pool_internal.h"
#include "server/postgres/pg_store.h"
#include "server/postgres/pg_store_internal.h"
#include "server/postgres/sql.h"

namespace ringwarden {
namespace {

// FleetStats::agents_seen_5m counts agents heard from within this window.
constexpr absl::Duration kRecentlySeenWindow = absl::Minutes(5);

absl::Status ReadHealthAgents(PgTx& tx, const HealthQuery& query,
                              std::vector<AgentHealthRow>& out) {
  // The holding pins, already chosen by the domain, as parallel key and value arrays.
  std::vector<std::string> keys, values;
  for (const LabelPin& pin : query.holding_pins) {
    keys.push_back(pin.label_key);
    values.push_back(pin.label_value);
  }
  const pqxx::result rows =
      tx.Exec(sql::kHealthAgents, query.channel, TextArray(keys), TextArray(values));
  out.reserve(rows.size());
  for (const pqxx::row& row : rows) {
    AgentHealthRow a;
    a.agent_id = row[0].as<std::string>();
    ASSIGN_OR_RETURN(a.ring, ParseStored(ParseRing(row[1].as<std::string>()), "agent ring"));
    a.version = row[2].as<int64_t>();
    a.since = OptionalTimeFromMicros(row[3]);
    a.last_seen = OptionalTimeFromMicros(row[4]);
    a.boot_since = OptionalTimeFromMicros(row[5]);
    out.push_back(std::move(a));
  }
  return absl::OkStatus();
}

absl::Status ReadHealthApplies(PgTx& tx, const HealthQuery& query, std::vector<ApplyRow>& out) {
  for (const pqxx::row& row : tx.Exec(sql::kHealthApplies, query.channel, query.version)) {
    ApplyRow a;
    a.agent_id = row[0].as<std::string>();
    a.channel = query.channel;
    a.version = query.version;
    ASSIGN_OR_RETURN(a.outcome,
                     ParseStored(ParseApplyOutcome(row[1].as<std::string>()), "apply outcome"));
    a.at = TimeFromMicros(row[2]);
    out.push_back(std::move(a));
  }
  return absl::OkStatus();
}

absl::Status ReadHealthCrashes(PgTx& tx, const HealthQuery& query, std::vector<CrashRow>& out) {
  for (const pqxx::row& row : tx.Exec(sql::kHealthCrashes, query.channel, query.version,
                                      query.previous_version, ToMicros(query.since))) {
    CrashRow c;
    c.agent_id = row[0].as<std::string>();
    ASSIGN_OR_RETURN(c.kind, ParseStored(ParseCrashKind(row[1].as<std::string>()), "crash kind"));
    c.channel = query.channel;
    c.version = row[2].as<int64_t>();
    c.at = TimeFromMicros(row[3]);
    out.push_back(std::move(c));
  }
  return absl::OkStatus();
}

absl::Status ReadHealthEvents(PgTx& tx, const HealthQuery& query,
                              std::vector<HealthEventRow>& out) {
  for (const pqxx::row& row : tx.Exec(sql::kHealthEvents, query.channel, query.version,
                                      query.previous_version, ToMicros(query.since))) {
    HealthEventRow h;
    h.agent_id = row[0].as<std::string>();
    h.kind = row[1].as<std::string>();
    h.channel = query.channel;
    h.version = row[2].as<int64_t>();
    h.at = TimeFromMicros(row[3]);
    out.push_back(std::move(h));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RolloutHealthRows> PgStore::LoadRolloutHealth(const HealthQuery& query) {
  RolloutHealthRows out;
  RETURN_IF_ERROR(
      pool_->Run("load_rollout_health", "reading rollout health", [&](PgTx& tx) -> absl::Status {
        out = RolloutHealthRows{};
        RETURN_IF_ERROR(ReadHealthAgents(tx, query, out.agents));
        RETURN_IF_ERROR(ReadHealthApplies(tx, query, out.applies));
        for (const pqxx::row& row : tx.Exec(sql::kHealthFetches, query.channel, query.version)) {
          out.fetches.push_back(FetchRow{row[0].as<std::string>(), query.channel, query.version,
                                         TimeFromMicros(row[1])});
        }
        RETURN_IF_ERROR(ReadHealthCrashes(tx, query, out.crashes));
        return ReadHealthEvents(tx, query, out.health_events);
      }));
  return out;
}

absl::StatusOr<std::pair<std::vector<AgentRecord>, int64_t>> PgStore::ListAgents(
    std::optional<Ring> ring, int limit) {
  std::vector<AgentRecord> agents;
  int64_t total = 0;
  const std::string ring_name = ring.has_value() ? std::string(RingName(*ring)) : "";
  RETURN_IF_ERROR(pool_->Run("list_agents", "listing agents", [&](PgTx& tx) -> absl::Status {
    agents.clear();
    total = tx.Exec1(sql::kCountAgents, ring_name)[0].as<int64_t>();
    for (const pqxx::row& row : tx.Exec(sql::kListAgents, ring_name, limit)) {
      ASSIGN_OR_RETURN(AgentRecord a, AgentFromRow(row));
      agents.push_back(std::move(a));
    }
    return absl::OkStatus();
  }));
  return std::make_pair(std::move(agents), total);
}

absl::StatusOr<FleetStats> PgStore::LoadFleetStats() {
  FleetStats stats;
  RETURN_IF_ERROR(pool_->Run("fleet_stats", "loading fleet statistics", [&](PgTx& tx) {
    stats = FleetStats{};
    for (const pqxx::row& row : tx.Exec(sql::kRolloutsByState)) {
      stats.rollouts[{row[0].as<std::string>(), row[1].as<std::string>()}] = row[2].as<int64_t>();
    }
    for (const pqxx::row& row : tx.Exec(sql::kAgentsByRing)) {
      stats.agents_by_ring[row[0].as<std::string>()] = row[1].as<int64_t>();
    }
    for (const pqxx::row& row : tx.Exec(sql::kAgentsByVersion)) {
      stats.agents_by_version[{row[0].as<std::string>(), row[1].as<int64_t>()}] =
          row[2].as<int64_t>();
    }
    stats.agents_seen_5m =
        tx.Exec1(sql::kAgentsSeenWithin, absl::ToDoubleSeconds(kRecentlySeenWindow))[0]
            .as<int64_t>();
    return absl::OkStatus();
  }));
  return stats;
}

}  // namespace ringwarden

// PgStore's health role: the telemetry a rollout is judged on, the agent list
// and the fleet counts the metrics report.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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
      query.only.has_value()
          ? tx.Exec(sql::kHealthAgentsOf, query.channel, TextArray(keys), TextArray(values),
                    TextArray(query.only->agents))
          : tx.Exec(sql::kHealthAgents, query.channel, TextArray(keys), TextArray(values));
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

// ReadOfVersion runs `all`, or `of` for the agents `of_agents` when the query names agents: a
// read of the rows of the rollout's version.
pqxx::result ReadOfVersion(PgTx& tx, const HealthQuery& query, const sql::Statement& all,
                           const sql::Statement& of, const std::vector<std::string>* of_agents) {
  if (query.only.has_value()) {
    return tx.Exec(of, query.channel, query.version, TextArray(*of_agents));
  }
  return tx.Exec(all, query.channel, query.version);
}

absl::Status ReadHealthApplies(PgTx& tx, const HealthQuery& query, std::vector<ApplyRow>& out) {
  for (const pqxx::row& row : ReadOfVersion(tx, query, sql::kHealthApplies, sql::kHealthAppliesOf,
                                            query.only ? &query.only->applies : nullptr)) {
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

// ReadSince runs `all`, or `of` for the agents `of_agents` when the query names agents: a read of
// the rows on the version or the previous one since `query.since`.
pqxx::result ReadSince(PgTx& tx, const HealthQuery& query, const sql::Statement& all,
                       const sql::Statement& of, const std::vector<std::string>* of_agents) {
  if (query.only.has_value()) {
    return tx.Exec(of, query.channel, query.version, query.previous_version, ToMicros(query.since),
                   TextArray(*of_agents));
  }
  return tx.Exec(all, query.channel, query.version, query.previous_version, ToMicros(query.since));
}

absl::Status ReadHealthFetches(PgTx& tx, const HealthQuery& query, std::vector<FetchRow>& out) {
  for (const pqxx::row& row : ReadOfVersion(tx, query, sql::kHealthFetches, sql::kHealthFetchesOf,
                                            query.only ? &query.only->fetches : nullptr)) {
    out.push_back(
        FetchRow{row[0].as<std::string>(), query.channel, query.version, TimeFromMicros(row[1])});
  }
  return absl::OkStatus();
}

absl::Status ReadHealthCrashes(PgTx& tx, const HealthQuery& query, std::vector<CrashRow>& out) {
  for (const pqxx::row& row : ReadSince(tx, query, sql::kHealthCrashes, sql::kHealthCrashesOf,
                                        query.only ? &query.only->crashes : nullptr)) {
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
  for (const pqxx::row& row : ReadSince(tx, query, sql::kHealthEvents, sql::kHealthEventsOf,
                                        query.only ? &query.only->health_events : nullptr)) {
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
        // A read of named agents skips the kinds that name none.
        auto wanted = [&](const std::vector<std::string> HealthAgents::*kind) {
          return !query.only.has_value() || !((*query.only).*kind).empty();
        };
        if (wanted(&HealthAgents::agents)) {
          RETURN_IF_ERROR(ReadHealthAgents(tx, query, out.agents));
        }
        if (wanted(&HealthAgents::applies)) {
          RETURN_IF_ERROR(ReadHealthApplies(tx, query, out.applies));
        }
        if (wanted(&HealthAgents::fetches)) {
          RETURN_IF_ERROR(ReadHealthFetches(tx, query, out.fetches));
        }
        if (wanted(&HealthAgents::crashes)) {
          RETURN_IF_ERROR(ReadHealthCrashes(tx, query, out.crashes));
        }
        if (wanted(&HealthAgents::health_events)) {
          RETURN_IF_ERROR(ReadHealthEvents(tx, query, out.health_events));
        }
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<HealthChanges> PgStore::ReadHealthChanges(std::optional<uint64_t> after) {
  HealthChanges changes;
  RETURN_IF_ERROR(pool_->Run("read_health_changes", "reading health changes", [&](PgTx& tx) {
    changes = HealthChanges{};
    // First the horizon, then the rows: every transaction below it had ended
    // before this statement, so the next one sees all of its rows.
    const pqxx::row at = tx.Exec1(sql::kHealthChangesHorizon);
    const std::string horizon = at[0].as<std::string>();
    if (!absl::SimpleAtoi(horizon, &changes.horizon)) {
      return absl::InternalError(absl::StrCat("unreadable transaction horizon '", horizon, "'"));
    }
    changes.held_open = at[1].as<bool>();
    if (!after.has_value()) {
      return absl::OkStatus();
    }
    for (const pqxx::row& row : tx.Exec(sql::kHealthChanges, std::to_string(*after), horizon)) {
      const std::string source = row[0].as<std::string>();
      std::vector<std::string>* kind = source == "agents" || source == "agent_versions"
                                           ? &changes.changed.agents
                                       : source == "apply_results"   ? &changes.changed.applies
                                       : source == "content_fetches" ? &changes.changed.fetches
                                       : source == "crash_reports"   ? &changes.changed.crashes
                                       : source == "health_events" ? &changes.changed.health_events
                                                                   : nullptr;
      if (kind == nullptr) {
        return absl::InternalError(absl::StrCat("health change from unknown table '", source, "'"));
      }
      kind->push_back(row[1].as<std::string>());
    }
    // Heartbeats: the newest values per agent (last_seen only grows).
    absl::flat_hash_map<std::string, size_t> seen_at;
    for (const pqxx::row& row : tx.Exec(sql::kHealthSeen, std::to_string(*after), horizon)) {
      SeenChange seen{row[0].as<std::string>(), TimeFromMicros(row[1]),
                      OptionalTimeFromMicros(row[2])};
      auto [it, fresh] = seen_at.try_emplace(seen.agent_id, changes.seen.size());
      if (fresh) {
        changes.seen.push_back(std::move(seen));
      } else if (changes.seen[it->second].last_seen <= seen.last_seen) {
        changes.seen[it->second] = std::move(seen);
      }
    }
    // agents and agent_versions both name an agent row.
    std::sort(changes.changed.agents.begin(), changes.changed.agents.end());
    changes.changed.agents.erase(
        std::unique(changes.changed.agents.begin(), changes.changed.agents.end()),
        changes.changed.agents.end());
    return absl::OkStatus();
  }));
  return changes;
}

absl::Status PgStore::TrimHealthChanges(absl::Duration keep) {
  return pool_->Run("trim_health_changes", "trimming health changes", [&](PgTx& tx) {
    tx.Exec(sql::kTrimHealthChanges, absl::ToDoubleSeconds(keep));
    return absl::OkStatus();
  });
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

#include "server/postgres/pg_store_internal.h"

#include <nlohmann/json.hpp>
#include <utility>

#include "common/status_macros.h"
#include "server/domain/ring.h"
#include "server/domain/rollout.h"

namespace ringwarden {

std::optional<absl::Time> OptionalTimeFromMicros(const pqxx::field& f) {
  if (f.is_null()) {
    return std::nullopt;
  }
  return TimeFromMicros(f);
}

std::string TextArray(const std::vector<std::string>& values) {
  // Array input syntax: inside double quotes only '"' and '\' need a backslash.
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') {
        out += '\\';
      }
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::vector<std::string> KeyIdsFromJson(const pqxx::field& field) {
  return nlohmann::json::parse(field.as<std::string>()).get<std::vector<std::string>>();
}

const std::string& RingOrderParam() {
  static const std::string* const param = [] {
    std::vector<std::string> names;
    for (Ring ring : kAllRings) {
      names.emplace_back(RingName(ring));
    }
    return new std::string(TextArray(names));
  }();
  return *param;
}

const std::string& FinalStatesParam() {
  static const std::string* const param = new std::string(TextArray(FinalStateNames()));
  return *param;
}

absl::StatusOr<RolloutRecord> RolloutFromRow(const pqxx::row& row) {
  RolloutRecord r;
  r.id = row[0].as<std::string>();
  r.channel = row[1].as<std::string>();
  r.version = row[2].as<int64_t>();
  ASSIGN_OR_RETURN(
      r.position, ParseStored(PositionFromNames(row[3].as<std::string>(), row[4].as<std::string>()),
                              "rollout state"));
  r.previous_version = row[5].as<int64_t>();
  r.revision = row[6].as<int64_t>();
  r.created_by = row[7].as<std::string>();
  r.created_at = TimeFromMicros(row[8]);
  r.updated_at = TimeFromMicros(row[9]);
  r.stage_started_at = TimeFromMicros(row[10]);
  r.policy_name = row[11].as<std::string>();
  r.policy_version = row[12].as<int64_t>();
  r.broad_wave = row[13].as<int>();
  r.broad_fraction = row[14].as<double>();
  r.admitted_fraction = row[15].as<double>();
  r.admitted_hosts = row[16].as<int64_t>();
  return r;
}

absl::StatusOr<std::vector<RolloutRecord>> RolloutsFromResult(const pqxx::result& result) {
  std::vector<RolloutRecord> out;
  out.reserve(result.size());
  for (const pqxx::row& row : result) {
    ASSIGN_OR_RETURN(RolloutRecord r, RolloutFromRow(row));
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace ringwarden

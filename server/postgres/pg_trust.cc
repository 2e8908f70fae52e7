// PgStore's trust role: the stored roots of trust (consecutive versions,
// serialized by an advisory lock) and the channel floors (only ever rising,
// checked under the channel's row lock, which rollout creation takes too).
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/postgres/pg_pool_internal.h"
#include "server/postgres/pg_store.h"
#include "server/postgres/pg_store_internal.h"
#include "server/postgres/sql.h"

namespace ringwarden {

std::vector<RootRecord> RootsFromResult(const pqxx::result& result) {
  std::vector<RootRecord> out;
  out.reserve(result.size());
  for (const pqxx::row& row : result) {
    RootRecord r;
    r.version = row[0].as<int64_t>();
    r.envelope_json = row[1].as<std::string>();
    r.expires = TimeFromMicros(row[2]);
    r.key_ids = KeyIdsFromJson(row[3]);
    r.uploaded_at = TimeFromMicros(row[4]);
    r.uploaded_by = row[5].as<std::string>();
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<FloorRecord> FloorsFromResult(const pqxx::result& result) {
  std::vector<FloorRecord> out;
  out.reserve(result.size());
  for (const pqxx::row& row : result) {
    FloorRecord f;
    f.channel = row[0].as<std::string>();
    f.min_version = row[1].as<int64_t>();
    f.envelope_json = row[2].as<std::string>();
    f.key_ids = KeyIdsFromJson(row[3]);
    f.uploaded_at = TimeFromMicros(row[4]);
    f.uploaded_by = row[5].as<std::string>();
    out.push_back(std::move(f));
  }
  return out;
}

absl::Status PgStore::InsertRoot(const RootRecord& root, const AuditRecord& audit) {
  return pool_->Run("insert_root", "storing the root", [&](PgTx& tx) -> absl::Status {
    tx.Exec(sql::kLockTrustRoots);
    const int64_t newest = tx.Exec1(sql::kNewestRootVersion)[0].as<int64_t>();
    if (newest != 0 && root.version != newest + 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("root version ", root.version, " does not follow the newest stored root v",
                       newest, "; roots are stored one version at a time"));
    }
    tx.Exec(sql::kInsertRoot, root.version, root.envelope_json, ToMicros(root.expires),
            TextArray(root.key_ids), root.uploaded_by);
    AppendAudit(tx, audit);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<RootRecord>> PgStore::ListRoots() {
  std::vector<RootRecord> out;
  RETURN_IF_ERROR(pool_->Run("list_roots", "listing roots", [&](PgTx& tx) {
    out = RootsFromResult(tx.Exec(sql::kListRoots));
    return absl::OkStatus();
  }));
  return out;
}

absl::Status PgStore::UpsertFloor(const FloorRecord& floor, const AuditRecord& audit) {
  return pool_->Run("upsert_floor", "storing the floor", [&](PgTx& tx) -> absl::Status {
    // The channel row lock serializes with rollout creation, which re-checks the floor.
    tx.Exec(sql::kLockChannel, floor.channel);
    RETURN_IF_ERROR(ClaimApproval(tx, audit));
    const pqxx::result stored = tx.Exec(sql::kListFloors, floor.channel);
    if (!stored.empty() && floor.min_version < stored[0][1].as<int64_t>()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "channel ", floor.channel, " already has floor v", stored[0][1].as<int64_t>(),
          "; a floor only rises, v", floor.min_version, " is below it"));
    }
    tx.Exec(sql::kUpsertFloor, floor.channel, floor.min_version, floor.envelope_json,
            TextArray(floor.key_ids), floor.uploaded_by);
    AppendAudit(tx, audit);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<FloorRecord>> PgStore::ListFloors() {
  std::vector<FloorRecord> out;
  RETURN_IF_ERROR(pool_->Run("list_floors", "listing floors", [&](PgTx& tx) {
    out = FloorsFromResult(tx.Exec(sql::kListFloors, ""));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::optional<FloorRecord>> PgStore::GetFloor(const std::string& channel) {
  std::optional<FloorRecord> out;
  RETURN_IF_ERROR(pool_->Run("get_floor", "reading the floor", [&](PgTx& tx) {
    std::vector<FloorRecord> floors = FloorsFromResult(tx.Exec(sql::kListFloors, channel));
    out.reset();
    if (!floors.empty()) {
      out = std::move(floors.front());
    }
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace ringwarden

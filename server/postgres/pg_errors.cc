#include "server/postgres/pg_errors.h"

#include <pqxx/pqxx>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ringwarden {
namespace {

// Class 08: connection exceptions; 57P: operator intervention (shutdown,
// a terminated backend).
bool IsConnectionState(const std::string& sqlstate) {
  return absl::StartsWith(sqlstate, "08") || absl::StartsWith(sqlstate, "57P");
}

}  // namespace

PgError ClassifyPgError(const std::exception& e, absl::string_view what) {
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    return {absl::UnknownError(absl::StrCat(what, ": ", e.what(), " (commit outcome unknown)")),
            /*transient=*/false, /*connection_lost=*/true};
  }
  const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr ||
      (sql != nullptr && IsConnectionState(sql->sqlstate()))) {
    return {absl::UnavailableError(absl::StrCat(what, ": database unavailable: ", e.what())),
            /*transient=*/true, /*connection_lost=*/true};
  }
  if (dynamic_cast<const pqxx::serialization_failure*>(&e) != nullptr ||
      dynamic_cast<const pqxx::deadlock_detected*>(&e) != nullptr) {
    // What the caller sees once the retries are spent: retry later, not "re-read".
    return {absl::UnavailableError(absl::StrCat(
                what, ": database kept aborting the transaction; retry later: ", e.what())),
            /*transient=*/true, /*connection_lost=*/false};
  }
  if (dynamic_cast<const pqxx::transaction_rollback*>(&e) != nullptr) {
    return {absl::UnavailableError(
                absl::StrCat(what, ": database rolled the transaction back: ", e.what())),
            /*transient=*/false, /*connection_lost=*/false};
  }
  if (dynamic_cast<const pqxx::unique_violation*>(&e) != nullptr) {
    return {absl::AlreadyExistsError(absl::StrCat(what, ": ", e.what())), false, false};
  }
  return {absl::InternalError(absl::StrCat(what, ": ", e.what())), false, false};
}

absl::Status PgErrorToStatus(const std::exception& e, absl::string_view what) {
  return ClassifyPgError(e, what).status;
}

}  // namespace ringwarden

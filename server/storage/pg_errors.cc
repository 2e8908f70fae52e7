#include "server/storage/pg_errors.h"

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"

namespace ringwarden {

absl::Status PgErrorToStatus(const std::exception& e, absl::string_view what) {
  const std::string message = absl::StrCat(what, ": ", e.what());
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    return absl::UnknownError(absl::StrCat(message, " (commit outcome unknown)"));
  }
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) {
    return absl::UnavailableError(absl::StrCat(what, ": database unavailable: ", e.what()));
  }
  if (dynamic_cast<const pqxx::transaction_rollback*>(&e) != nullptr) {
    return absl::AbortedError(message);
  }
  if (dynamic_cast<const pqxx::unique_violation*>(&e) != nullptr) {
    return absl::AlreadyExistsError(message);
  }
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e); sql != nullptr) {
    // Class 08: connection exceptions; 57P: operator intervention (shutdown).
    const std::string& state = sql->sqlstate();
    if (state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0) {
      return absl::UnavailableError(absl::StrCat(what, ": database unavailable: ", e.what()));
    }
  }
  return absl::InternalError(message);
}

}  // namespace ringwarden

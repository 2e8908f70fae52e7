// pg_errors.h: the one place database-driver exceptions become absl::Status.
//
// ClassifyPgError also says whether retrying the whole transaction may help
// (`transient`): a broken connection (08xxx, 57Pxx), a serialization failure
// or a deadlock. An in-doubt commit is UNKNOWN and never transient; ABORTED is
// never produced here (it means only a stale revision, which PgStore reports).
// Thread-safety: pure functions.
#pragma once

#include <exception>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ringwarden {

// PgError is a classified database failure.
struct PgError {
  absl::Status status;
  // A retry of the whole transaction may succeed.
  bool transient = false;
  // The connection cannot be used again.
  bool connection_lost = false;
};

// ClassifyPgError maps an exception thrown while `what` (e.g. "storing
// content"):
//   broken connection, SQLSTATE 08xxx, 57Pxx  UNAVAILABLE, transient, connection lost
//   serialization failure, deadlock           UNAVAILABLE ("database kept aborting the
//                                             transaction"), transient
//   in-doubt commit                           UNKNOWN, connection lost
//   other rollback by the server              UNAVAILABLE
//   unique violation                          ALREADY_EXISTS
//   anything else                             INTERNAL
PgError ClassifyPgError(const std::exception& e, absl::string_view what);

// PgErrorToStatus is ClassifyPgError(e, what).status, for callers that do not retry.
absl::Status PgErrorToStatus(const std::exception& e, absl::string_view what);

}  // namespace ringwarden

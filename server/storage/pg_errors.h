// pg_errors.h: the one place pqxx exceptions become absl::Status.
//
// broken_connection -> UNAVAILABLE, serialization failure and deadlock ->
// ABORTED, unique violation -> ALREADY_EXISTS, in-doubt commit -> UNKNOWN
// (never retried), everything else -> INTERNAL.
#pragma once

#include <exception>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ringwarden {

// PgErrorToStatus maps an exception thrown while `what` to a status.
absl::Status PgErrorToStatus(const std::exception& e, absl::string_view what);

}  // namespace ringwarden

// status_macros.h: RETURN_IF_ERROR and ASSIGN_OR_RETURN for absl::Status code paths.
//
//   RETURN_IF_ERROR(store.Commit());
//   ASSIGN_OR_RETURN(Rollout r, store.GetRollout(id));
//
// This Abseil release ships neither, so they live here once.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define RINGWARDEN_CONCAT_INNER(a, b) a##b
#define RINGWARDEN_CONCAT(a, b) RINGWARDEN_CONCAT_INNER(a, b)

// RETURN_IF_ERROR evaluates `expr` (an absl::Status) and returns it from the
// enclosing function when it is not OK.
#define RETURN_IF_ERROR(expr)                   \
  do {                                          \
    ::absl::Status ringwarden_status_ = (expr); \
    if (!ringwarden_status_.ok()) {             \
      return ringwarden_status_;                \
    }                                           \
  } while (false)

#define RINGWARDEN_ASSIGN_OR_RETURN_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                     \
  if (!tmp.ok()) {                                        \
    return std::move(tmp).status();                       \
  }                                                       \
  lhs = std::move(tmp).value()

// ASSIGN_OR_RETURN evaluates `rexpr` (an absl::StatusOr<T>); on error it returns
// the status, otherwise it move-assigns the value to `lhs` (which may declare).
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  RINGWARDEN_ASSIGN_OR_RETURN_IMPL(RINGWARDEN_CONCAT(ringwarden_statusor_, __LINE__), lhs, rexpr)

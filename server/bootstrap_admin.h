// bootstrap_admin.h: the first admin token, written straight to the database.
//
//   ASSIGN_OR_RETURN(IssuedAdminToken t, BootstrapAdmin(conninfo, "alice", absl::Hours(24)));
//
// `ringwarden-server bootstrap-admin` calls it once per fleet: every later
// token is made with `ringctl token create`. Thread-safety: a free function
// that opens its own connection.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/core/admin_tokens.h"

namespace ringwarden {

// BootstrapAdmin applies the migrations, then issues an admin token for
// `name` valid for `ttl`. FAILED_PRECONDITION when an unexpired, unrevoked
// admin token exists already.
absl::StatusOr<IssuedAdminToken> BootstrapAdmin(const std::string& conninfo,
                                                const std::string& name, absl::Duration ttl);

}  // namespace ringwarden

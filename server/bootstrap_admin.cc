#include "server/bootstrap_admin.h"

#include "common/admin_token.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "server/postgres/migrations.h"
#include "server/postgres/pg_store.h"

namespace ringwarden {

absl::StatusOr<IssuedAdminToken> BootstrapAdmin(const std::string& conninfo,
                                                const std::string& name, absl::Duration ttl) {
  RETURN_IF_ERROR(ApplyMigrations(conninfo, EmbeddedMigrations()).status());
  PgStore store(conninfo, /*pool_size=*/1);
  AdminTokens tokens(store, RealClock::Instance(), SecureRandomBytes);
  return tokens.Bootstrap(name, ttl);
}

}  // namespace ringwarden

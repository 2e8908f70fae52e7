#include "server/postgres/pg_store.h"

#include <utility>

#include "server/postgres/pg_pool_internal.h"
#include "server/postgres/sql.h"

namespace ringwarden {

PgStore::PgStore(std::string conninfo, int pool_size)
    : pool_(std::make_unique<PgPool>(std::move(conninfo), pool_size)) {}

PgStore::~PgStore() = default;

void PgStore::SetObserver(StoreObserver* observer) { pool_->SetObserver(observer); }

absl::Status PgStore::Ping() {
  return pool_->Run("ping", "pinging the database", [](PgTx& tx) {
    tx.Exec1(sql::kPing);
    return absl::OkStatus();
  });
}

}  // namespace ringwarden

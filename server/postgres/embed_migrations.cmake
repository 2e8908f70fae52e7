# Writes a C++ source holding every migrations/NNNN_*.sql file as a raw string.
# Invoked with -DMIGRATIONS_DIR=... -DOUTPUT=...
file(GLOB files RELATIVE ${MIGRATIONS_DIR} ${MIGRATIONS_DIR}/*.sql)
list(SORT files)
set(body "")
foreach(f ${files})
  file(READ ${MIGRATIONS_DIR}/${f} sql)
  string(SUBSTRING ${f} 0 4 num)
  math(EXPR n "${num}")
  string(APPEND body "      {${n}, \"${f}\", R\"ringwarden_sql(${sql})ringwarden_sql\"},\n")
endforeach()
file(WRITE ${OUTPUT}.tmp "// Generated from migrations/*.sql; do not edit.
#include <cstdlib>
#include <iostream>

#include \"server/postgres/migrations.h\"

namespace ringwarden {

const std::vector<Migration>& EmbeddedMigrations() {
  static const std::vector<Migration>* migrations = [] {
    auto ordered = OrderMigrations({
${body}    });
    if (!ordered.ok()) {
      std::cerr << \"embedded migrations are broken: \" << ordered.status() << std::endl;
      std::abort();
    }
    return new std::vector<Migration>(*std::move(ordered));
  }();
  return *migrations;
}

}  // namespace ringwarden
")
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)

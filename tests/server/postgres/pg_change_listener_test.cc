// The listener's connection string: keepalives added to what the operator gave, nothing lost.
#include "server/postgres/pg_change_listener.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <map>
#include <string>

namespace ringwarden {
namespace {

// Options reads a conninfo back with libpq: keyword -> value, for the keywords it sets.
std::map<std::string, std::string> Options(const std::string& conninfo) {
  std::map<std::string, std::string> out;
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (options == nullptr) {
    ADD_FAILURE() << "libpq cannot parse " << conninfo << ": " << (error ? error : "");
    PQfreemem(error);
    return out;
  }
  for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr) {
      out[o->keyword] = o->val;
    }
  }
  PQconninfoFree(options);
  return out;
}

TEST(WithKeepalivesTest, AddsKeepalivesAndKeepsEveryOptionGiven) {
  const std::map<std::string, std::string> keyvalue = Options(WithKeepalives(
      R"(host=/tmp/pg port=5433 dbname=ringwarden user=rw password='it\'s a \\ secret')"));
  EXPECT_EQ(keyvalue, (std::map<std::string, std::string>{{"host", "/tmp/pg"},
                                                          {"port", "5433"},
                                                          {"dbname", "ringwarden"},
                                                          {"user", "rw"},
                                                          {"password", R"(it's a \ secret)"},
                                                          {"keepalives", "1"},
                                                          {"keepalives_idle", "10"},
                                                          {"keepalives_interval", "5"},
                                                          {"keepalives_count", "3"},
                                                          {"tcp_user_timeout", "30000"}}));
  // A URI, with its own keepalive settings: those stay as they are.
  const std::map<std::string, std::string> uri = Options(
      WithKeepalives("postgresql://rw@db1.example.com:5432,db2.example.com:5432/ringwarden"
                     "?keepalives_idle=60&target_session_attrs=read-write&sslmode=verify-full"));
  EXPECT_EQ(uri.at("host"), "db1.example.com,db2.example.com");
  EXPECT_EQ(uri.at("port"), "5432,5432");
  EXPECT_EQ(uri.at("dbname"), "ringwarden");
  EXPECT_EQ(uri.at("user"), "rw");
  EXPECT_EQ(uri.at("target_session_attrs"), "read-write");
  EXPECT_EQ(uri.at("sslmode"), "verify-full");
  EXPECT_EQ(uri.at("keepalives_idle"), "60");
  EXPECT_EQ(uri.at("keepalives_count"), "3");
  EXPECT_EQ(uri.at("tcp_user_timeout"), "30000");
  // An empty conninfo takes libpq's defaults and the keepalives.
  EXPECT_EQ(Options(WithKeepalives("")).at("keepalives_idle"), "10");
}

TEST(WithKeepalivesTest, AConninfoLibpqCannotParseIsLeftForTheConnectionToReport) {
  for (const std::string bad : {"host", "no_such_option=1", "postgresql://[::1"}) {
    EXPECT_EQ(WithKeepalives(bad), bad);
  }
}

}  // namespace
}  // namespace ringwarden

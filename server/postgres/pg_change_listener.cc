#include "server/postgres/pg_change_listener.h"

#include <libpq-fe.h>

#include <iostream>
#include <pqxx/pqxx>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace ringwarden {
namespace {

class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& connection, const std::function<void()>& on_change)
      : pqxx::notification_receiver(connection, kCatalogChannel), on_change_(on_change) {}
  void operator()(const std::string& /*payload*/, int /*backend_pid*/) override { on_change_(); }

 private:
  const std::function<void()>& on_change_;
};

// Quoted is `value` as a conninfo value: in single quotes, with ' and \ escaped.
std::string Quoted(absl::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out + "'";
}

}  // namespace

std::string WithKeepalives(const std::string& conninfo) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (options == nullptr) {
    PQfreemem(error);
    return conninfo;
  }
  std::string out;
  absl::flat_hash_set<std::string> given;
  for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr) {
      given.insert(o->keyword);
      absl::StrAppend(&out, out.empty() ? "" : " ", o->keyword, "=", Quoted(o->val));
    }
  }
  PQconninfoFree(options);
  const std::pair<const char*, const char*> keepalives[] = {{"keepalives", "1"},
                                                            {"keepalives_idle", "10"},
                                                            {"keepalives_interval", "5"},
                                                            {"keepalives_count", "3"},
                                                            {"tcp_user_timeout", "30000"}};
  for (const auto& [keyword, value] : keepalives) {
    if (!given.contains(keyword)) {
      absl::StrAppend(&out, out.empty() ? "" : " ", keyword, "=", value);
    }
  }
  return out;
}

PgChangeListener::PgChangeListener(std::string conninfo, std::function<void()> on_change,
                                   absl::Duration reconnect_delay)
    : conninfo_(std::move(conninfo)),
      on_change_(std::move(on_change)),
      reconnect_delay_(reconnect_delay) {}

PgChangeListener::~PgChangeListener() { Stop(); }

void PgChangeListener::Start() {
  thread_ = std::thread([this] { Run(); });
}

void PgChangeListener::Stop() {
  if (!stop_.HasBeenNotified()) {
    stop_.Notify();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
}

void PgChangeListener::Run() {
  bool logged = false;
  while (!stop_.HasBeenNotified()) {
    try {
      pqxx::connection connection(WithKeepalives(conninfo_));
      Receiver receiver(connection, on_change_);  // sends LISTEN
      if (logged) {
        std::cerr << "listening for catalog changes again" << std::endl;
      }
      logged = false;
      on_change_();  // anything committed while not listening
      while (!stop_.HasBeenNotified()) {
        // Wakes at least every 200 ms to see Stop().
        connection.await_notification(0, 200'000);
      }
      return;
    } catch (const std::exception& e) {
      if (!logged) {
        std::cerr << "not listening for catalog changes (the periodic refresh still runs): "
                  << e.what() << std::endl;
        logged = true;
      }
    }
    stop_.WaitForNotificationWithTimeout(reconnect_delay_);
  }
}

}  // namespace ringwarden

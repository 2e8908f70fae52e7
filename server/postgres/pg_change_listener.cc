#include "server/postgres/pg_change_listener.h"

#include <iostream>
#include <pqxx/pqxx>
#include <utility>

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

}  // namespace

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
      pqxx::connection connection(conninfo_);
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

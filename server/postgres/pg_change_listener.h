// pg_change_listener.h: wakes a replica when another one changes what agents are told.
//
// Every table the assignment snapshot reads (content, rollouts, pins, ring policy, settings,
// roots, floors, agent revocations) has a statement trigger that sends NOTIFY on
// kCatalogChannel (migration 0010); PostgreSQL delivers it at commit to every listening
// session. The listener holds one dedicated connection, LISTENs, and calls `on_change` for each
// delivery and after every (re)connect, when changes may have been missed. Its connection has TCP
// keepalives and a user timeout (WithKeepalives), so a peer that vanished (a failover, a dropped
// NAT entry) is noticed within about half a minute and the listener connects again; until then
// the periodic refresh is the safety net.
//
//   PgChangeListener listener(conninfo, [&] { refresher.Wake(); });
//   listener.Start();
//   ...
//   listener.Stop();
//
// Thread-safety: Start and Stop from one thread; `on_change` runs on the listener's thread.
#pragma once

#include <functional>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace ringwarden {

inline constexpr char kCatalogChannel[] = "ringwarden_catalog";

// WithKeepalives returns `conninfo` (key=value or URI) as key=value with TCP keepalives (idle
// 10 s, every 5 s, 3 probes) and tcp_user_timeout 30 s added, leaving any it sets itself as
// they are; a conninfo libpq cannot parse is returned as it is, for the connection to report.
std::string WithKeepalives(const std::string& conninfo);

class PgChangeListener {
 public:
  PgChangeListener(std::string conninfo, std::function<void()> on_change,
                   absl::Duration reconnect_delay = absl::Seconds(1));
  ~PgChangeListener();
  PgChangeListener(const PgChangeListener&) = delete;
  PgChangeListener& operator=(const PgChangeListener&) = delete;

  void Start();
  void Stop();

 private:
  void Run();

  const std::string conninfo_;
  const std::function<void()> on_change_;
  const absl::Duration reconnect_delay_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace ringwarden

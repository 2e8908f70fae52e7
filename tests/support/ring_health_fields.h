// ring_health_fields.h: every field of a RingHealth as one comparable tuple, for tests that
// compare two summaries whole.
#pragma once

#include <tuple>

#include "server/domain/health_ledger.h"

namespace ringwarden {

inline auto Fields(const RingHealth& h) {
  return std::make_tuple(h.attempted, h.applied, h.healthy, h.pending, h.crashed, h.process_crashed,
                         h.unclean_shutdowns, h.reverted, h.unhealthy, h.silent, h.apply_failed,
                         h.failed, h.rejected, h.crash_reports, h.health_events, h.exposure,
                         h.control_agents, h.control_failed, h.control_exposure);
}

}  // namespace ringwarden

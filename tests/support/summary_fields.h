// summary_fields.h: every field of a RingHealth or an ExposurePlan as one comparable tuple, for
// tests that compare two summaries whole.
#pragma once

#include <tuple>

#include "server/domain/exposure.h"
#include "server/domain/health_ledger.h"

namespace ringwarden {

inline auto Fields(const RingHealth& h) {
  return std::make_tuple(h.attempted, h.applied, h.healthy, h.pending, h.crashed, h.process_crashed,
                         h.unclean_shutdowns, h.reverted, h.unhealthy, h.silent, h.apply_failed,
                         h.failed, h.rejected, h.crash_reports, h.health_events, h.exposure,
                         h.control_agents, h.control_failed, h.control_exposure);
}

inline auto Fields(const ExposurePlan& p) {
  return std::make_tuple(p.enabled, p.ring_hosts, p.cap, p.admitted, p.admitted_fraction, p.loaded,
                         p.proven, p.failed, p.allowed_failures, p.unproven, p.grew, p.frozen,
                         p.complete, p.next_step, p.next_step_at);
}

}  // namespace ringwarden

// retry_hint.h: how the server tells a refused agent when to come back.
//
// A call refused with RESOURCE_EXHAUSTED (the agent's rate, or its share of the
// telemetry queue) carries trailing metadata "retry-after-ms: <milliseconds>";
// the agent client waits at least that long before it calls again.
#pragma once

namespace ringwarden {

inline constexpr char kRetryAfterMetadataKey[] = "retry-after-ms";

}  // namespace ringwarden

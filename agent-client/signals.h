// signals.h: synchronous SIGINT/SIGTERM handling for the agent-client executables.
//
// BlockStopSignals must run first in main, before gRPC starts any thread, so that
// the signals are delivered only through WaitForStopSignal (sigtimedwait): the
// main loop's sleep is also its signal wait, with no handler and no extra thread.
// Thread-safety: call from the main thread only.
#pragma once

#include "absl/time/time.h"

namespace ringwarden::agent {

// BlockStopSignals blocks SIGINT and SIGTERM in the calling thread and every
// thread created after it.
void BlockStopSignals();

// WaitForStopSignal waits up to `timeout`; returns true when SIGINT or SIGTERM arrived.
bool WaitForStopSignal(absl::Duration timeout);

}  // namespace ringwarden::agent

// assignment.h: which version of a channel an agent should run.
//
// Combines the channel's completed and revoked versions, its unfinished
// rollout, the agent's ring, its pin and what it runs now. The rules, in order:
// a revoked version is always left (rollback); an emergency stop hands out
// nothing new; a pin wins over rollouts; a rollout reaches the rings its stage
// allows, inside the stage ring only the share its exposure budget admitted
// (HALTED: only agents that already have it keep it); otherwise the
// newest completed version. An agent is never told to go lower unless its
// version is revoked or its pin names a lower one.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/random/bit_gen_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/domain/ring.h"
#include "server/domain/rollout.h"

namespace ringwarden {

// PinPolicy is the version policy of an agent group.
struct PinPolicy {
  enum class Kind { kLatest, kPreviousCompleted, kVersion };
  Kind kind = Kind::kLatest;
  int64_t version = 0;  // for kVersion

  friend bool operator==(const PinPolicy& a, const PinPolicy& b) {
    return a.kind == b.kind && a.version == b.version;
  }
};

// HoldsBack reports a pin that keeps agents off the newest version (n-1 or a
// version). Agents under such a pin are not offered rollouts, so they are left
// out of rollout health; see EffectivePin for precedence.
bool HoldsBack(const PinPolicy& pin);

// LabelPin is a pin policy for one channel, applied to agents carrying label
// key=value.
struct LabelPin {
  std::string label_key;
  std::string label_value;
  std::string channel;
  PinPolicy policy;
};

// EffectivePin is the pin precedence rule, defined once: among `pins` for
// `channel` whose label the agent carries, one that holds back wins over
// "latest"; among equals the first in `pins` order (storage lists them by
// label key, then value). nullopt when none applies.
std::optional<PinPolicy> EffectivePin(const std::vector<LabelPin>& pins, absl::string_view channel,
                                      const std::map<std::string, std::string>& labels);

// HoldingPins returns the pins of `channel` that hold agents back: the
// selectors storage uses to leave pinned agents out of rollout health.
std::vector<LabelPin> HoldingPins(const std::vector<LabelPin>& pins, absl::string_view channel);

// ParsePinPolicy accepts "latest", "n-1" or a version number >= 1.
absl::StatusOr<PinPolicy> ParsePinPolicy(absl::string_view text);
// PinPolicyText is the inverse of ParsePinPolicy.
std::string PinPolicyText(const PinPolicy& pin);

// ActiveRollout is a channel's unfinished rollout.
struct ActiveRollout {
  std::string id;
  int64_t version = 0;
  RolloutPosition position;
  // While BROAD: the share of the broad ring offered the version (the wave).
  double broad_fraction = 1.0;
  // The exposure budget (exposure.h): agents of the stage's ring are offered the version when
  // their wave position is below it. Earlier rings have it whole.
  double admitted_fraction = 1.0;
};

// ChannelCatalog is what the server knows of one channel.
struct ChannelCatalog {
  std::string channel;
  // Versions whose rollout completed, ascending, revoked ones excluded.
  std::vector<int64_t> completed;
  // Versions revoked by a rollback, ascending.
  std::vector<int64_t> revoked;
  std::optional<ActiveRollout> rollout;
};

// AgentChannelView is one agent as seen for one channel.
struct AgentChannelView {
  Ring ring = Ring::kBroad;
  int64_t current_version = 0;  // 0 = has none
  std::optional<PinPolicy> pin;
  double wave_position = 0;  // WavePosition() of the agent
};

// PollPace is how soon an agent should poll again, as a share of the poll interval. Agents whose
// version may be taken back poll sooner, so that a halt or a rollback reaches them in a fraction
// of the interval instead of a whole one.
enum class PollPace {
  kNormal,  // the poll interval
  kSoon,    // half of it: waiting for the exposure budget, or running the version of a rollout
            // in CANARY or EARLY (BROAD hosts keep the normal pace: capacity is sized for it)
  kUrgent,  // a quarter: running the version of a rollout halted in CANARY or EARLY (a rollback
            // may follow), or a revoked one (told to roll back: one quicker poll, then it left)
};

// PollPaceFactor returns the share of the poll interval for `pace`: 1, 0.5 or 0.25.
double PollPaceFactor(PollPace pace);

// ResolvedAssignment is the answer; version 0 means nothing to run yet.
struct ResolvedAssignment {
  int64_t version = 0;
  bool rollback = false;   // lower than current: the agent may go back
  std::string rollout_id;  // set when the version comes from the active rollout
  // The rollout's stage reaches the agent's ring but its budget has not admitted the agent yet:
  // it should poll again sooner.
  bool awaiting_admission = false;
  PollPace pace = PollPace::kNormal;
};

// ResolveAssignment applies the rules in the header comment. A version pin
// resolves to the newest completed version at or below it.
ResolvedAssignment ResolveAssignment(const ChannelCatalog& catalog, const AgentChannelView& agent,
                                     bool emergency_stop);

// PinnedVersion returns the version a pin holds agents at today (0 when none
// exists yet): "latest" the newest completed version, "n-1" the one before it
// (the newest while fewer than two completed), a version pin the newest
// completed version at or below it.
int64_t PinnedVersion(const ChannelCatalog& catalog, const PinPolicy& pin);

// IsRevoked reports whether `version` is in catalog.revoked.
bool IsRevoked(const ChannelCatalog& catalog, int64_t version);

// NextPollDelay spreads polls: `interval` scaled by a uniform factor in
// [1 - jitter, 1 + jitter], jitter clamped to [0, 1).
absl::Duration NextPollDelay(absl::Duration interval, double jitter, absl::BitGenRef rng);

}  // namespace ringwarden

#include "server/domain/assignment.h"

#include <algorithm>

#include "absl/random/distributions.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ringwarden {
namespace {

int64_t NewestCompleted(const ChannelCatalog& catalog) {
  return catalog.completed.empty() ? 0 : catalog.completed.back();
}

// NewestCompletedAtMost returns the newest completed version <= limit, or 0.
int64_t NewestCompletedAtMost(const ChannelCatalog& catalog, int64_t limit) {
  int64_t best = 0;
  for (int64_t v : catalog.completed) {
    if (v <= limit) {
      best = v;
    }
  }
  return best;
}

}  // namespace

absl::StatusOr<PinPolicy> ParsePinPolicy(absl::string_view text) {
  if (text == "latest") {
    return PinPolicy{PinPolicy::Kind::kLatest, 0};
  }
  if (text == "n-1") {
    return PinPolicy{PinPolicy::Kind::kPreviousCompleted, 0};
  }
  int64_t version = 0;
  if (absl::SimpleAtoi(text, &version) && version >= 1) {
    return PinPolicy{PinPolicy::Kind::kVersion, version};
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "pin policy \"", text, "\" is not valid; use latest, n-1 or a version number >= 1"));
}

std::string PinPolicyText(const PinPolicy& pin) {
  switch (pin.kind) {
    case PinPolicy::Kind::kLatest:
      return "latest";
    case PinPolicy::Kind::kPreviousCompleted:
      return "n-1";
    case PinPolicy::Kind::kVersion:
      return absl::StrCat(pin.version);
  }
  return "latest";
}

int64_t PinnedVersion(const ChannelCatalog& catalog, const PinPolicy& pin) {
  switch (pin.kind) {
    case PinPolicy::Kind::kLatest:
      return NewestCompleted(catalog);
    case PinPolicy::Kind::kPreviousCompleted:
      if (catalog.completed.size() >= 2) {
        return catalog.completed[catalog.completed.size() - 2];
      }
      return NewestCompleted(catalog);
    case PinPolicy::Kind::kVersion:
      // Only a version that completed its rollout may be pinned to; a pin to
      // a halted, pending or revoked version holds at the completed one below.
      return NewestCompletedAtMost(catalog, pin.version);
  }
  return 0;
}

bool IsRevoked(const ChannelCatalog& catalog, int64_t version) {
  return std::binary_search(catalog.revoked.begin(), catalog.revoked.end(), version);
}

ResolvedAssignment ResolveAssignment(const ChannelCatalog& catalog, const AgentChannelView& agent,
                                     bool emergency_stop) {
  const int64_t current = agent.current_version;
  const bool current_revoked = current != 0 && IsRevoked(catalog, current);

  if (current_revoked) {
    // Leaving a revoked version is always allowed, even during an emergency
    // stop; go to the newest completed version below it.
    int64_t target = NewestCompletedAtMost(catalog, current);
    if (agent.pin.has_value() && agent.pin->kind != PinPolicy::Kind::kLatest) {
      target = std::min(target, PinnedVersion(catalog, *agent.pin));
    }
    ResolvedAssignment out{target, true, ""};
    out.pace = PollPace::kUrgent;
    return out;
  }
  if (emergency_stop) {
    return ResolvedAssignment{current, false, ""};
  }

  if (agent.pin.has_value() && agent.pin->kind != PinPolicy::Kind::kLatest) {
    const int64_t target = PinnedVersion(catalog, *agent.pin);
    if (target == 0) {
      return ResolvedAssignment{current, false, ""};
    }
    return ResolvedAssignment{target, target < current, ""};
  }

  bool awaiting = false;
  if (catalog.rollout.has_value()) {
    const ActiveRollout& rollout = *catalog.rollout;
    const bool stage_ring = StageRing(rollout.position.state) == agent.ring;
    const bool in_wave = !stage_ring || (agent.wave_position < rollout.admitted_fraction &&
                                         (rollout.position.state != RolloutState::kBroad ||
                                          agent.wave_position < rollout.broad_fraction));
    const bool ring_reached = ReachesRing(rollout.position, agent.ring);
    const bool reaches = ring_reached && in_wave;
    const bool keeps =
        rollout.position.state == RolloutState::kHalted && current == rollout.version;
    if ((reaches || keeps) && rollout.version >= current) {
      ResolvedAssignment out{rollout.version, false, rollout.id};
      if (current == rollout.version) {
        // Running the version on trial: a halt or rollback must find it quickly.
        if (rollout.position.state == RolloutState::kHalted) {
          // A halt in BROAD leaves most of the fleet on the version: the normal pace.
          out.pace = rollout.position.halted_from == RolloutState::kBroad ? PollPace::kNormal
                                                                          : PollPace::kUrgent;
        } else if (rollout.position.state == RolloutState::kCanary ||
                   rollout.position.state == RolloutState::kEarly) {
          out.pace = PollPace::kSoon;
        }
      }
      return out;
    }
    awaiting = ring_reached && !in_wave && rollout.version > current;
  }

  const int64_t newest = NewestCompleted(catalog);
  ResolvedAssignment out{newest, false, ""};
  if (current > newest) {
    // Ahead of the newest completed version (e.g. a halted rollout's version):
    // keep it; going lower needs a rollback.
    out.version = current;
  }
  out.awaiting_admission = awaiting;
  if (awaiting) {
    out.pace = PollPace::kSoon;
  }
  return out;
}

double PollPaceFactor(PollPace pace) {
  switch (pace) {
    case PollPace::kSoon:
      return 0.5;
    case PollPace::kUrgent:
      return 0.25;
    case PollPace::kNormal:
      break;
  }
  return 1.0;
}

absl::Duration NextPollDelay(absl::Duration interval, double jitter, absl::BitGenRef rng) {
  jitter = std::clamp(jitter, 0.0, 0.99);
  const double factor = absl::Uniform(rng, 1.0 - jitter, 1.0 + jitter);
  return interval * factor;
}

bool HoldsBack(const PinPolicy& pin) { return pin.kind != PinPolicy::Kind::kLatest; }

std::optional<PinPolicy> EffectivePin(const std::vector<LabelPin>& pins, absl::string_view channel,
                                      const std::map<std::string, std::string>& labels) {
  std::optional<PinPolicy> latest;
  for (const LabelPin& pin : pins) {
    if (pin.channel != channel) {
      continue;
    }
    auto it = labels.find(pin.label_key);
    if (it == labels.end() || it->second != pin.label_value) {
      continue;
    }
    if (HoldsBack(pin.policy)) {
      return pin.policy;
    }
    if (!latest.has_value()) {
      latest = pin.policy;
    }
  }
  return latest;
}

std::vector<LabelPin> HoldingPins(const std::vector<LabelPin>& pins, absl::string_view channel) {
  std::vector<LabelPin> out;
  for (const LabelPin& pin : pins) {
    if (pin.channel == channel && HoldsBack(pin.policy)) {
      out.push_back(pin);
    }
  }
  return out;
}

}  // namespace ringwarden

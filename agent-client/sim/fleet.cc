#include "agent-client/sim/fleet.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent-client/sim/memory_content_store.h"
#include "common/names.h"
#include "nlohmann/json.hpp"

namespace ringwarden::agent {

namespace {

absl::Status ParseProbability(absl::string_view key, absl::string_view value, double* out) {
  if (!absl::SimpleAtod(value, out) || !(*out >= 0.0 && *out <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, "=", value, ": want a probability between 0 and 1"));
  }
  return absl::OkStatus();
}

double UniformFrom(uint64_t& state) {
  return static_cast<double>(SplitMix64(state) >> 11) * 0x1.0p-53;
}

// HostSeed derives independent per-host streams from the fleet seed.
uint64_t HostSeed(uint64_t seed, int index, uint64_t stream) {
  uint64_t s = seed ^ (static_cast<uint64_t>(index) * 0x9e3779b97f4a7c15ULL) ^
               (stream * 0xc2b2ae3d27d4eb4fULL);
  SplitMix64(s);
  return s;
}

}  // namespace

absl::StatusOr<FaultSpec> ParseFaultSpec(absl::string_view text) {
  const std::string usage =
      "want VERSION:crash=P,silence=P,apply_fail=P,load_fail=P,health=P,health_kind=K,"
      "latency_ms=N,onset_ms=N[,channel=C][,ring=R]";
  std::pair<absl::string_view, absl::string_view> parts =
      absl::StrSplit(text, absl::MaxSplits(':', 1));
  FaultSpec spec;
  if (!absl::SimpleAtoi(parts.first, &spec.version) || spec.version < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("fault \"", text, "\": version must be an integer >= 1; ", usage));
  }
  if (parts.second.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("fault \"", text, "\": no faults; ", usage));
  }
  for (absl::string_view item : absl::StrSplit(parts.second, ',')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(item, absl::MaxSplits('=', 1));
    const absl::string_view key = kv.first;
    const absl::string_view value = kv.second;
    absl::Status status;
    if (key == "crash") {
      status = ParseProbability(key, value, &spec.crash);
    } else if (key == "silence") {
      status = ParseProbability(key, value, &spec.silence);
    } else if (key == "apply_fail") {
      status = ParseProbability(key, value, &spec.apply_fail);
    } else if (key == "load_fail") {
      status = ParseProbability(key, value, &spec.load_fail);
    } else if (key == "ring") {
      if (value != "canary" && value != "early" && value != "broad") {
        status = absl::InvalidArgumentError(
            absl::StrCat("ring=", value, ": want canary, early or broad"));
      }
      spec.ring = std::string(value);
    } else if (key == "health") {
      status = ParseProbability(key, value, &spec.health);
    } else if (key == "health_kind") {
      status = ValidateHealthEventKind(value);
      spec.health_kind = std::string(value);
    } else if (key == "onset_ms") {
      int64_t ms = 0;
      if (!absl::SimpleAtoi(value, &ms) || ms < 0) {
        status = absl::InvalidArgumentError(
            absl::StrCat("onset_ms=", value, ": want milliseconds >= 0"));
      }
      spec.onset = absl::Milliseconds(ms);
    } else if (key == "latency_ms") {
      int64_t ms = 0;
      if (!absl::SimpleAtoi(value, &ms) || ms < 0) {
        status = absl::InvalidArgumentError(
            absl::StrCat("latency_ms=", value, ": want milliseconds >= 0"));
      }
      spec.latency = absl::Milliseconds(ms);
    } else if (key == "channel") {
      if (!IsValidChannelName(value)) {
        status = absl::InvalidArgumentError(absl::StrCat("channel=", value, ": invalid name"));
      }
      spec.channel = std::string(value);
    } else {
      status = absl::InvalidArgumentError(absl::StrCat("unknown key \"", key, "\""));
    }
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("fault \"", text, "\": ", status.message(), "; ", usage));
    }
  }
  return spec;
}

absl::StatusOr<LabelFraction> ParseLabelFraction(absl::string_view text) {
  std::pair<absl::string_view, absl::string_view> kv =
      absl::StrSplit(text, absl::MaxSplits('=', 1));
  const size_t colon = kv.second.rfind(':');
  LabelFraction out;
  if (kv.first.empty() || colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtod(kv.second.substr(colon + 1), &out.fraction) ||
      !(out.fraction >= 0.0 && out.fraction <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "label fraction \"", text, "\": want KEY=VALUE:FRACTION, e.g. group=dogfood:0.005"));
  }
  out.key = std::string(kv.first);
  out.value = std::string(kv.second.substr(0, colon));
  return out;
}

absl::StatusOr<TokenFraction> ParseTokenFraction(absl::string_view text) {
  const size_t colon = text.rfind(':');
  TokenFraction out;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtod(text.substr(colon + 1), &out.fraction) ||
      !(out.fraction >= 0.0 && out.fraction <= 1.0)) {
    return absl::InvalidArgumentError(
        "token fraction: want TOKEN:FRACTION, e.g. rwe_...:0.005 (the token is not echoed)");
  }
  out.token = std::string(text.substr(0, colon));
  return out;
}

// ---- FleetSummary ----

namespace {

// SumCounts adds up `field` of `version` of `channel` over `rings` (ring "" = every ring).
int64_t SumCounts(const decltype(FleetSummary::rings)& rings, absl::string_view ring,
                  absl::string_view channel, int64_t version, int64_t VersionCounts::*field) {
  int64_t n = 0;
  for (const auto& [r, channels] : rings) {
    if (!ring.empty() && r != ring) {
      continue;
    }
    auto c = channels.find(std::string(channel));
    if (c == channels.end()) {
      continue;
    }
    auto v = c->second.find(version);
    if (v != c->second.end()) {
      n += v->second.*field;
    }
  }
  return n;
}

}  // namespace

int64_t FleetSummary::EverApplied(absl::string_view ring, absl::string_view channel,
                                  int64_t version) const {
  return SumCounts(rings, ring, channel, version, &VersionCounts::ever_applied);
}

int64_t FleetSummary::InEffect(absl::string_view ring, absl::string_view channel,
                               int64_t version) const {
  return SumCounts(rings, ring, channel, version, &VersionCounts::in_effect);
}

std::string FleetSummary::ToLine() const {
  std::string line =
      absl::StrCat("enrolled ", enrolled, "/", agents, " running ", running, " down ", down,
                   " silent ", silent, " crashed ", crashed_agents, " (", crashes, " crashes)");
  // Versions in effect over all rings, per channel, then the hosts that ever loaded each.
  std::map<std::string, std::map<int64_t, int64_t>> histogram;
  std::map<std::string, std::map<int64_t, int64_t>> ever;
  for (const auto& [ring, channels] : rings) {
    for (const auto& [channel, versions] : channels) {
      for (const auto& [version, counts] : versions) {
        if (counts.in_effect > 0) {
          histogram[channel][version] += counts.in_effect;
        }
        if (counts.ever_applied > 0) {
          ever[channel][version] += counts.ever_applied;
        }
      }
    }
  }
  for (const auto& [channel, versions] : ever) {
    absl::StrAppend(&line, " | ", channel, ":");
    for (const auto& [version, n] : histogram[channel]) {
      absl::StrAppend(&line, " v", version, "=", n);
    }
    absl::StrAppend(&line, " (ever loaded:");
    for (const auto& [version, n] : versions) {
      absl::StrAppend(&line, " v", version, "=", n);
    }
    absl::StrAppend(&line, ")");
  }
  absl::StrAppend(&line, " | applied ", applied, " reverted ", reverted, " failed ", apply_failed,
                  " rejected ", rejected, " errors ", rpc_errors, " late ", late_turns);
  if (telemetry_errors > 0 || dropped_events > 0) {
    absl::StrAppend(&line, " telemetry-errors ", telemetry_errors, " dropped ", dropped_events);
  }
  if (!last_error.empty()) {
    absl::StrAppend(&line, " (last: ", last_error, ")");
  }
  return line;
}

std::string FleetSummary::ToJson() const {
  nlohmann::json rings_json = nlohmann::json::object();
  for (const auto& [ring, count] : ring_agents) {
    rings_json[ring]["agents"] = count;
    rings_json[ring]["channels"] = nlohmann::json::object();
  }
  for (const auto& [ring, channels] : rings) {
    nlohmann::json& r = rings_json[ring];
    if (!r.contains("agents")) {
      r["agents"] = 0;
    }
    r["channels"] = nlohmann::json::object();
    for (const auto& [channel, versions] : channels) {
      nlohmann::json c = nlohmann::json::object();
      for (const auto& [version, counts] : versions) {
        c[absl::StrCat(version)] = {{"ever_applied", counts.ever_applied},
                                    {"in_effect", counts.in_effect}};
      }
      r["channels"][channel] = std::move(c);
    }
  }
  nlohmann::json out{{"agents", agents},
                     {"enrolled", enrolled},
                     {"running", running},
                     {"down", down},
                     {"silent", silent},
                     {"crashed_agents", crashed_agents},
                     {"crashes", crashes},
                     {"restarts", restarts},
                     {"applied", applied},
                     {"reverted", reverted},
                     {"apply_failed", apply_failed},
                     {"rejected", rejected},
                     {"polls", polls},
                     {"rpc_errors", rpc_errors},
                     {"telemetry_errors", telemetry_errors},
                     {"dropped_events", dropped_events},
                     {"late_turns", late_turns},
                     {"max_lateness_seconds", absl::ToDoubleSeconds(max_lateness)},
                     {"last_error", last_error},
                     {"rings", rings_json}};
  return out.dump(2);
}

// ---- Host ----

// Host is one simulated machine: its persistent store, its agent process (absent
// while down) and its fault-injection hooks.
class Fleet::Host final : public AgentHooks, public LoadChecker {
 public:
  Host(Fleet& fleet, int index, std::string id, std::map<std::string, std::string> labels,
       std::string token, std::shared_ptr<AgentConnection> connection, uint64_t seed)
      : index(index),
        id(std::move(id)),
        labels(std::move(labels)),
        token(std::move(token)),
        client(connection != nullptr
                   ? std::make_unique<AgentClient>(std::move(connection), fleet.options_.client)
                   : std::make_unique<AgentClient>(fleet.options_.server,
                                                   fleet.ConnectionOptionsForHost(),
                                                   fleet.options_.client)),
        rng(seed),
        fleet_(fleet) {}

  double Uniform() { return UniformFrom(rng); }

  absl::Duration ApplyDelay(const std::string& channel, int64_t version) override {
    std::shared_ptr<const FaultSpec> f = fleet_.FindFault(*this, channel, version);
    return f != nullptr ? f->latency : absl::ZeroDuration();
  }

  absl::Status BeforeApply(const std::string& channel, int64_t version) override {
    std::shared_ptr<const FaultSpec> f = fleet_.FindFault(*this, channel, version);
    if (f != nullptr && f->apply_fail > 0 && Uniform() < f->apply_fail) {
      return absl::InternalError("simulated apply failure (fault injection)");
    }
    return absl::OkStatus();
  }

  HostFate OnContentLoaded(const std::vector<ChannelVersion>& versions) override {
    fleet_.RecordLoaded(*this, versions);
    for (const ChannelVersion& cv : versions) {
      std::shared_ptr<const FaultSpec> f = fleet_.FindFault(*this, cv.channel, cv.version);
      if (f == nullptr) {
        continue;
      }
      // A load after a late fault's onset draws here; the late strike must not draw again.
      if (f->onset > absl::ZeroDuration()) {
        late_checked.insert({cv.channel, cv.version});
      }
      if (f->crash > 0 && Uniform() < f->crash) {
        return HostFate::kCrash;
      }
      if (f->silence > 0 && Uniform() < f->silence) {
        return HostFate::kSilence;
      }
    }
    return HostFate::kHealthy;
  }

  void OnApplyReport(const ApplyReport& report) override { fleet_.CountReport(report); }

  absl::Status Check(const LoadCheckRequest& request) override {
    std::shared_ptr<const FaultSpec> f = fleet_.FindFault(*this, request.channel, request.version);
    if (f != nullptr && f->load_fail > 0 && Uniform() < f->load_fail) {
      return absl::FailedPreconditionError("simulated load-check failure (fault injection)");
    }
    return absl::OkStatus();
  }

  // CurrentRing is the ring of the running agent, else the last one known.
  const std::string& CurrentRing() const {
    return agent != nullptr && !agent->ring().empty() ? agent->ring() : ring;
  }

  const int index;
  const std::string id;
  const std::map<std::string, std::string> labels;
  MemoryContentStore store;
  const std::string token;  // enrollment token
  std::unique_ptr<AgentClient> client;
  std::unique_ptr<Agent> agent;  // null while the host is down
  uint64_t rng;
  HostPhase phase = HostPhase::kNew;
  std::string ring;
  absl::Time next_reboot = absl::InfiniteFuture();
  bool enrolled_once = false;
  bool crashed_once = false;
  // The current agent process's counters already added to the fleet's.
  int64_t telemetry_failures_seen = 0;
  int64_t dropped_seen = 0;
  // What this host contributes to the fleet's counters.
  bool ring_counted = false;
  std::string counted_ring;
  std::vector<ChannelVersion> counted;
  std::vector<ChannelVersion> ever;
  // Versions whose late-onset crash this host has drawn for.
  std::set<std::pair<std::string, int64_t>> late_checked;

 private:
  Fleet& fleet_;
};

// ---- Fleet ----

Fleet::Fleet(FleetOptions options, const Root& pinned_root, Clock& clock)
    : Fleet(std::move(options), pinned_root, {}, clock) {}

Fleet::Fleet(FleetOptions options, const Root& pinned_root,
             std::vector<std::shared_ptr<AgentConnection>> connections, Clock& clock)
    : options_(std::move(options)),
      pinned_root_(pinned_root),
      clock_(clock),
      connections_(std::move(connections)),
      backoff_random_(options_.seed ^ 0x6261636b6f6666ULL),
      backoff_(options_.backoff, backoff_random_) {}

Fleet::~Fleet() { Stop(); }

ConnectionOptions Fleet::ConnectionOptionsForHost() const {
  ConnectionOptions options;
  options.server_ca_pem = options_.server_ca_pem;
  options.own_connection = true;
  return options;
}

absl::Status Fleet::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_) {
      return absl::FailedPreconditionError("fleet already started");
    }
  }
  if (options_.agents < 1) {
    return absl::InvalidArgumentError("--agents must be at least 1");
  }
  if (options_.threads < 1) {
    return absl::InvalidArgumentError("--threads must be at least 1");
  }
  if (pinned_root_.version < 1) {
    return absl::InvalidArgumentError("a verified root of trust (--root) is needed");
  }
  if (absl::Status valid = ValidateAgentClientOptions(options_.client); !valid.ok()) {
    return valid;
  }
  if (!(options_.unclean_shutdown_on_restart >= 0 && options_.unclean_shutdown_on_restart <= 1)) {
    return absl::InvalidArgumentError("--unclean-shutdown-on-restart must be between 0 and 1");
  }
  for (const std::string& channel : options_.agent.channels) {
    if (!IsValidChannelName(channel)) {
      return absl::InvalidArgumentError(absl::StrCat("invalid channel name \"", channel, "\""));
    }
  }
  if (connections_.empty() && options_.server_ca_pem.empty()) {
    if (options_.server.empty()) {
      return absl::InvalidArgumentError("--server is required");
    }
    if (options_.connections < 1) {
      return absl::InvalidArgumentError("--connections must be at least 1");
    }
    for (int i = 0; i < options_.connections; ++i) {
      ConnectionOptions connection_options;
      connection_options.own_connection = true;
      connections_.push_back(AgentConnection::Create(options_.server, connection_options));
    }
  }

  hosts_.reserve(static_cast<size_t>(options_.agents));
  for (int i = 0; i < options_.agents; ++i) {
    std::map<std::string, std::string> labels;
    uint64_t label_rng = HostSeed(options_.seed, i, /*stream=*/1);
    for (const LabelFraction& lf : options_.label_fractions) {
      if (UniformFrom(label_rng) < lf.fraction) {
        labels[lf.key] = lf.value;
      }
    }
    std::string token = options_.agent.enrollment_token;
    uint64_t token_rng = HostSeed(options_.seed, i, /*stream=*/3);
    for (const TokenFraction& tf : options_.token_fractions) {
      if (UniformFrom(token_rng) < tf.fraction) {
        token = tf.token;
      }
    }
    // Over TLS a host's client certificate needs a connection of its own.
    std::shared_ptr<AgentConnection> connection =
        connections_.empty() ? nullptr : connections_[static_cast<size_t>(i) % connections_.size()];
    hosts_.push_back(std::make_unique<Host>(
        *this, i, absl::StrCat(options_.id_prefix, i), std::move(labels), std::move(token),
        std::move(connection), HostSeed(options_.seed, i, /*stream=*/2)));
  }
  {
    absl::MutexLock lock(&stats_mu_);
    stats_ = FleetSummary{};
    stats_.agents = options_.agents;
  }
  const absl::Time now = clock_.Now();
  {
    absl::MutexLock lock(&mu_);
    for (auto& host : hosts_) {
      heap_.push({now + options_.start_spread * host->Uniform(), host->index});
    }
    started_ = true;
    started_at_ = now;
    absl::MutexLock faults_lock(&faults_mu_);
    for (const FaultSpec& spec : options_.faults) {
      faults_.push_back(std::make_shared<const FaultSpec>(spec));
    }
    stopping_ = false;
  }
  for (int t = 0; t < options_.threads; ++t) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
  return absl::OkStatus();
}

void Fleet::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    work_cv_.SignalAll();
  }
  for (std::thread& worker : workers_) {
    worker.join();
  }
  workers_.clear();
}

FleetSummary Fleet::Summary() const {
  absl::MutexLock lock(&stats_mu_);
  return stats_;
}

bool Fleet::WaitFor(const std::function<bool(const FleetSummary&)>& done, absl::Duration timeout) {
  const absl::Time deadline = clock_.Now() + timeout;
  while (true) {
    FleetSummary summary;
    int64_t seen;
    {
      absl::MutexLock lock(&stats_mu_);
      summary = stats_;
      seen = stats_version_;
    }
    if (done(summary)) {
      return true;
    }
    const absl::Time now = clock_.Now();
    if (now >= deadline) {
      return false;
    }
    absl::MutexLock lock(&stats_mu_);
    if (stats_version_ == seen) {
      // Woken by changes; the 50 ms bound lets `done` also watch state outside the fleet.
      stats_cv_.WaitWithDeadline(&stats_mu_, std::min(deadline, now + absl::Milliseconds(50)));
    }
  }
}

void Fleet::Schedule(int index, absl::Time at) {
  absl::MutexLock lock(&mu_);
  heap_.push({at, index});
  work_cv_.Signal();
}

void Fleet::WorkerLoop() {
  while (true) {
    int index;
    absl::Duration late;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        if (stopping_) {
          return;
        }
        if (heap_.empty()) {
          work_cv_.Wait(&mu_);
          continue;
        }
        const absl::Time due = heap_.top().at;
        if (due > clock_.Now()) {
          work_cv_.WaitWithDeadline(&mu_, due);
          continue;
        }
        index = heap_.top().index;
        heap_.pop();
        late = clock_.Now() - due;
        break;
      }
    }
    if (late > options_.late_after) {
      absl::MutexLock lock(&stats_mu_);
      stats_.late_turns++;
      stats_.max_lateness = std::max(stats_.max_lateness, late);
    }
    const absl::Time next = Step(*hosts_[static_cast<size_t>(index)]);
    if (next != absl::InfiniteFuture()) {
      Schedule(index, next);
    }
  }
}

std::shared_ptr<const FaultSpec> Fleet::FindFault(const Host& host, absl::string_view channel,
                                                  int64_t version, absl::Time now) const {
  if (now == absl::InfiniteFuture()) {
    now = clock_.Now();
  }
  absl::ReaderMutexLock lock(&faults_mu_);
  for (const std::shared_ptr<const FaultSpec>& spec : faults_) {
    if (spec->Matches(channel, version) && now >= started_at_ + spec->onset &&
        (spec->ring.empty() || spec->ring == host.CurrentRing())) {
      return spec;
    }
  }
  return nullptr;
}

absl::Status Fleet::AddFault(FaultSpec fault) {
  {
    absl::MutexLock lock(&mu_);
    if (!started_) {
      return absl::FailedPreconditionError(
          "AddFault: start the fleet first (or use options.faults)");
    }
  }
  // Active from now on, and late: hosts already running the version are struck too.
  fault.onset = std::max(clock_.Now() - started_at_, absl::Nanoseconds(1));
  absl::MutexLock lock(&faults_mu_);
  faults_.insert(faults_.begin(), std::make_shared<const FaultSpec>(std::move(fault)));
  return absl::OkStatus();
}

bool Fleet::LateFault(Host& host, absl::Time now) {
  for (const ChannelVersion& cv : host.agent->VersionsInEffect()) {
    std::shared_ptr<const FaultSpec> f = FindFault(host, cv.channel, cv.version, now);
    if (f == nullptr) {
      continue;
    }
    if (f->health > 0 && host.Uniform() < f->health) {
      host.agent->ReportHealth(f->health_kind, "simulated health event (fault injection)")
          .IgnoreError();  // ParseFaultSpec validated the kind
    }
    if (f->onset > absl::ZeroDuration() && f->crash > 0 &&
        host.late_checked.insert({cv.channel, cv.version}).second && host.Uniform() < f->crash) {
      return true;
    }
  }
  return false;
}

void Fleet::SetPhase(Host& host, HostPhase next) {
  absl::MutexLock lock(&stats_mu_);
  auto counter = [this](HostPhase p) -> int64_t* {
    switch (p) {
      case HostPhase::kRunning:
        return &stats_.running;
      case HostPhase::kDown:
        return &stats_.down;
      case HostPhase::kSilent:
        return &stats_.silent;
      case HostPhase::kNew:
        return nullptr;
    }
    return nullptr;
  };
  if (int64_t* from = counter(host.phase)) {
    --*from;
  }
  if (int64_t* to = counter(next)) {
    ++*to;
  }
  host.phase = next;
  Changed();
}

void Fleet::Changed() {
  ++stats_version_;
  stats_cv_.SignalAll();
}

void Fleet::RecordLoaded(Host& host, const std::vector<ChannelVersion>& versions) {
  const std::string& ring = host.CurrentRing();
  absl::MutexLock lock(&stats_mu_);
  for (const ChannelVersion& cv : versions) {
    if (std::find(host.ever.begin(), host.ever.end(), cv) != host.ever.end()) {
      continue;
    }
    host.ever.push_back(cv);
    stats_.rings[ring][cv.channel][cv.version].ever_applied++;
  }
  Changed();
}

void Fleet::CountReport(const ApplyReport& report) {
  absl::MutexLock lock(&stats_mu_);
  switch (report.outcome) {
    case ApplyOutcome::kApplied:
      stats_.applied++;
      break;
    case ApplyOutcome::kReverted:
      stats_.reverted++;
      break;
    case ApplyOutcome::kApplyFailed:
    case ApplyOutcome::kLoadCheckFailed:
      stats_.apply_failed++;
      break;
    case ApplyOutcome::kSignatureRejected:
    case ApplyOutcome::kDigestMismatch:
      stats_.rejected++;
      break;
    case ApplyOutcome::kUnspecified:
      break;
  }
  Changed();
}

void Fleet::UpdateCounts(Host& host) {
  const std::string& ring = host.CurrentRing();
  if (ring.empty()) {
    return;  // counted once the ring is known
  }
  std::vector<ChannelVersion> versions = host.store.state().Versions();
  if (host.ring_counted && ring == host.counted_ring && versions == host.counted) {
    return;
  }
  absl::MutexLock lock(&stats_mu_);
  if (host.ring_counted) {
    stats_.ring_agents[host.counted_ring]--;
    for (const ChannelVersion& cv : host.counted) {
      stats_.rings[host.counted_ring][cv.channel][cv.version].in_effect--;
    }
  }
  stats_.ring_agents[ring]++;
  for (const ChannelVersion& cv : versions) {
    stats_.rings[ring][cv.channel][cv.version].in_effect++;
  }
  host.ring_counted = true;
  host.counted_ring = ring;
  host.counted = std::move(versions);
  Changed();
}

absl::Time Fleet::HostDown(Host& host, HostFate fate, absl::Time now) {
  if (!host.agent->ring().empty()) {
    host.ring = host.agent->ring();
  }
  host.agent.reset();
  UpdateCounts(host);
  if (fate == HostFate::kCrash) {
    {
      absl::MutexLock lock(&stats_mu_);
      stats_.crashes++;
      if (!host.crashed_once) {
        host.crashed_once = true;
        stats_.crashed_agents++;
      }
    }
    SetPhase(host, HostPhase::kDown);
    return now + options_.restart_delay;
  }
  SetPhase(host, HostPhase::kSilent);
  return absl::InfiniteFuture();
}

absl::Time Fleet::Step(Host& host) {
  absl::Time now = clock_.Now();
  if (host.phase == HostPhase::kSilent) {
    return absl::InfiniteFuture();
  }
  if (host.phase == HostPhase::kRunning && now >= host.next_reboot) {
    // Background reboot; unclean with the configured probability (the agent
    // then finds its running flag at the next start).
    if (!(host.Uniform() < options_.unclean_shutdown_on_restart)) {
      host.agent->Shutdown().IgnoreError();
    }
    host.agent.reset();
    SetPhase(host, HostPhase::kDown);
    return now + options_.restart_delay;
  }
  if (host.phase == HostPhase::kNew || host.phase == HostPhase::kDown) {
    if (host.phase == HostPhase::kDown) {
      absl::MutexLock lock(&stats_mu_);
      stats_.restarts++;
    } else if (host.Uniform() < options_.unclean_shutdown_on_restart) {
      AgentMeta meta = host.store.state().meta;
      meta.running = true;
      host.store.SaveMeta(meta).IgnoreError();
    }
    AgentConfig config = options_.agent;
    config.agent_id = host.id;
    config.labels = host.labels;
    config.hostname = host.id;
    config.boot_id = absl::StrCat(absl::Hex(SplitMix64(host.rng), absl::kZeroPad16));
    config.enrollment_token = host.token;
    // A new agent process starts from the credential its state kept.
    host.client->ClearCredential();
    host.agent = std::make_unique<Agent>(std::move(config), *host.client, host.store, pinned_root_,
                                         clock_, backoff_, &host, &host);
    host.telemetry_failures_seen = 0;
    host.dropped_seen = 0;
    absl::Status started = host.agent->Start();
    if (!started.ok()) {
      {
        absl::MutexLock lock(&stats_mu_);
        stats_.rpc_errors++;
        stats_.last_error = started.ToString();
      }
      host.agent.reset();
      return now + options_.restart_delay;
    }
    if (host.agent->host_down()) {
      return HostDown(host, host.agent->host_fate(), now);
    }
    UpdateCounts(host);
    SetPhase(host, HostPhase::kRunning);
    host.next_reboot = options_.reboot_every > absl::ZeroDuration()
                           ? now + options_.reboot_every * -std::log(1.0 - host.Uniform())
                           : absl::InfiniteFuture();
  }

  if (LateFault(host, now)) {
    // The machine goes down under the running version: no clean stop, so the next start
    // reports an unclean shutdown and loads the version again.
    return HostDown(host, HostFate::kCrash, now);
  }
  absl::StatusOr<absl::Duration> delay = host.agent->RunOnce();
  now = clock_.Now();
  if (host.agent->host_down()) {
    return HostDown(host, host.agent->host_fate(), now);
  }
  if (!host.agent->ring().empty()) {
    host.ring = host.agent->ring();
  }
  const absl::Status& error = delay.ok() ? host.agent->last_error() : delay.status();
  {
    absl::MutexLock lock(&stats_mu_);
    if (!host.enrolled_once && host.agent->enrolled()) {
      host.enrolled_once = true;
      stats_.enrolled++;
      Changed();
    }
    stats_.polls++;
    if (!error.ok()) {
      stats_.rpc_errors++;
      stats_.last_error = error.ToString();
    }
    // Per-agent counters only grow within one agent process.
    const int64_t telemetry = host.agent->telemetry_failures();
    const int64_t dropped = host.agent->dropped_events();
    if (telemetry != host.telemetry_failures_seen || dropped != host.dropped_seen) {
      stats_.telemetry_errors += telemetry - host.telemetry_failures_seen;
      stats_.dropped_events += dropped - host.dropped_seen;
      if (!host.agent->last_telemetry_error().ok()) {
        stats_.last_error = host.agent->last_telemetry_error().ToString();
      }
      host.telemetry_failures_seen = telemetry;
      host.dropped_seen = dropped;
    }
  }
  UpdateCounts(host);
  const absl::Duration wait = delay.ok() ? *delay : host.agent->ErrorDelay();
  return std::min(now + wait, host.next_reboot);
}

}  // namespace ringwarden::agent

#include "tests/support/fake_store.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/audit_chain.h"
#include "common/secret_token.h"
#include "common/status_macros.h"
#include "server/storage/audit_chain_entry.h"

namespace ringwarden::testing {
namespace {

// The operations FailNext and Calls accept: each Store method in snake_case.
constexpr absl::string_view kOperations[] = {
    "insert_content",
    "list_content",
    "get_content",
    "set_emergency_stop",
    "upsert_pin",
    "list_pins",
    "load_catalog",
    "load_catalog_changes",  // LoadCatalog with a cursor
    "insert_root",
    "list_roots",
    "upsert_floor",
    "list_floors",
    "get_floor",
    "put_policy",
    "get_policy",
    "list_policies",
    "create_rollout",
    "get_rollout",
    "list_rollouts",
    "get_unfinished_rollout",
    "apply_rollout_change",
    "upsert_decision",
    "list_decisions",
    "write_telemetry",
    "load_rollout_health",
    "read_health_changes",
    "trim_health_changes",
    "list_agents",
    "load_fleet_stats",
    "list_audit",
    "list_audit_oldest_first",
    "open_approval",
    "get_approval",
    "list_approvals",
    "reject_approval",
    "insert_admin_token",
    "get_admin_token",
    "list_admin_tokens",
    "revoke_admin_token",
};

// CheckKnownOperation aborts on a misspelt operation: a test that injects a
// failure nobody ever hits would pass for the wrong reason.
void CheckKnownOperation(absl::string_view operation) {
  if (std::find(std::begin(kOperations), std::end(kOperations), operation) ==
      std::end(kOperations)) {
    std::fprintf(stderr, "FakeStore: unknown operation \"%.*s\"\n",
                 static_cast<int>(operation.size()), operation.data());
    std::abort();
  }
}

// CheckJson refuses what a jsonb column refuses.
absl::Status CheckJson(const std::string& text, absl::string_view what) {
  if (!nlohmann::json::accept(text)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not valid JSON: ", text));
  }
  return absl::OkStatus();
}

absl::Status CheckLimit(int limit) {
  if (limit < 0) {
    return absl::InvalidArgumentError(absl::StrCat("limit ", limit, " must not be negative"));
  }
  return absl::OkStatus();
}

template <typename T>
void Truncate(std::vector<T>& rows, int limit) {
  if (rows.size() > static_cast<size_t>(limit)) {
    rows.resize(static_cast<size_t>(limit));
  }
}

template <typename T>
void AppendCopies(std::vector<T>& to, const std::vector<T>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

// CarriesLabelOf reports whether `labels` carry the label of any of `pins`.
bool CarriesLabelOf(const std::map<std::string, std::string>& labels,
                    const std::vector<LabelPin>& pins) {
  return std::any_of(pins.begin(), pins.end(), [&](const LabelPin& pin) {
    auto it = labels.find(pin.label_key);
    return it != labels.end() && it->second == pin.label_value;
  });
}

}  // namespace

FakeStore::FakeStore(const Clock& clock) : clock_(clock) {}

void FakeStore::FailNext(absl::string_view operation, absl::Status status, int times) {
  CheckKnownOperation(operation);
  if (status.ok()) {
    std::fprintf(stderr, "FakeStore: FailNext needs an error status\n");
    std::abort();
  }
  absl::MutexLock lock(&mu_);
  if (times <= 0) {
    failures_.erase(std::string(operation));
    return;
  }
  failures_[std::string(operation)] = InjectedFailure{std::move(status), times};
}

int FakeStore::Calls(absl::string_view operation) const {
  CheckKnownOperation(operation);
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(operation);
  return it == calls_.end() ? 0 : it->second;
}

std::vector<AuditRecord> FakeStore::Audit() const {
  absl::MutexLock lock(&mu_);
  return audit_;
}

TelemetryRows FakeStore::Written() const {
  absl::MutexLock lock(&mu_);
  return written_;
}

absl::Status FakeStore::BeginCall(absl::string_view operation) {
  auto count = calls_.find(operation);
  if (count == calls_.end()) {
    count = calls_.emplace(std::string(operation), 0).first;
  }
  ++count->second;
  auto failure = failures_.find(operation);
  if (failure == failures_.end()) {
    return absl::OkStatus();
  }
  absl::Status status = failure->second.status;
  if (--failure->second.remaining <= 0) {
    failures_.erase(failure);
  }
  return status;
}

void FakeStore::AppendAudit(AuditRecord audit) {
  audit.id = static_cast<int64_t>(audit_.size()) + 1;
  audit.at = clock_.Now();
  // Chained like the trigger of migrations/0005_audit_chain.sql does.
  audit.seq = audit.id;
  audit.prev_hash = audit_.empty() ? std::string(kAuditGenesisHash) : audit_.back().entry_hash;
  audit.entry_hash = AuditChainHash(ChainEntryOf(audit));
  audit_.push_back(std::move(audit));
}

RolloutRecord* FakeStore::FindRollout(absl::string_view id) {
  auto it = std::find_if(rollouts_.begin(), rollouts_.end(),
                         [&](const RolloutRecord& r) { return r.id == id; });
  return it == rollouts_.end() ? nullptr : &*it;
}

// ---- CatalogStore ----

absl::Status FakeStore::InsertContent(const ContentRecord& content, const AuditRecord& audit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("insert_content"));
  int64_t newest = 0;
  for (const auto& [key, stored] : content_) {
    if (key.first == content.channel) {
      newest = std::max(newest, key.second);
    }
  }
  if (content.version <= newest) {
    return absl::FailedPreconditionError(absl::StrCat("channel ", content.channel,
                                                      " already has version ", newest, "; version ",
                                                      content.version, " must be above it"));
  }
  RETURN_IF_ERROR(CheckJson(audit.evidence_json, "audit evidence"));
  ContentRecord stored = content;
  stored.uploaded_at = clock_.Now();
  stored.completed = false;
  stored.revoked = false;
  content_[{content.channel, content.version}] = std::move(stored);
  AppendAudit(audit);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ContentRecord>> FakeStore::ListContent(const std::string& channel) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("list_content"));
  std::vector<ContentRecord> out;
  for (const auto& [key, stored] : content_) {
    if (channel.empty() || key.first == channel) {
      out.push_back(stored);
      out.back().payload.clear();
    }
  }
  std::sort(out.begin(), out.end(), [](const ContentRecord& a, const ContentRecord& b) {
    return a.channel != b.channel ? a.channel < b.channel : a.version > b.version;
  });
  return out;
}

absl::StatusOr<ContentRecord> FakeStore::GetContent(const std::string& channel, int64_t version) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("get_content"));
  auto it = content_.find({channel, version});
  if (it == content_.end()) {
    return absl::NotFoundError(
        absl::StrCat("no content ", channel, " version ", version, "; upload it first"));
  }
  return it->second;
}

absl::Status FakeStore::SetEmergencyStop(bool active, const AuditRecord& audit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("set_emergency_stop"));
  RETURN_IF_ERROR(CheckJson(audit.evidence_json, "audit evidence"));
  emergency_stop_ = active;
  AppendAudit(audit);
  return absl::OkStatus();
}

absl::Status FakeStore::UpsertPin(const PinRecord& pin, const AuditRecord& audit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("upsert_pin"));
  RETURN_IF_ERROR(CheckJson(audit.evidence_json, "audit evidence"));
  RETURN_IF_ERROR(CheckClaim(audit));
  CommitClaim(audit);
  pins_[{pin.label_key, pin.label_value, pin.channel}] = pin;
  AppendAudit(audit);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<PinRecord>> FakeStore::ListPins() {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("list_pins"));
  std::vector<PinRecord> out;
  for (const auto& [key, pin] : pins_) {
    out.push_back(pin);
  }
  return out;
}

absl::StatusOr<CatalogData> FakeStore::LoadCatalog(
    std::optional<AgentGateCursor> gates_changed_since) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(
      BeginCall(gates_changed_since.has_value() ? "load_catalog_changes" : "load_catalog"));
  CatalogData data;
  for (const auto& [key, stored] : content_) {  // by channel, then version ascending
    data.content.push_back(stored);
    data.content.back().payload.clear();
  }
  for (const RolloutRecord& r : rollouts_) {
    if (!IsFinal(r.position.state)) {
      data.unfinished_rollouts.push_back(r);
    }
  }
  for (const auto& [key, pin] : pins_) {
    data.pins.push_back(pin);
  }
  data.ring_policy = RingPolicy{};
  data.emergency_stop = emergency_stop_;
  data.agent_token_secret = kAgentTokenSecret;
  for (const auto& [version, root] : roots_) {
    data.roots.push_back(root);
  }
  for (const auto& [channel, floor] : floors_) {
    data.floors.push_back(floor);
  }
  // Every agent's gate now, compared with the last load's: what differs changed at this load.
  const uint64_t load = ++catalog_loads_;
  absl::flat_hash_map<std::string, AgentGate> whole;
  for (const auto& [agent_id, agent] : agents_) {
    auto credentials = credentials_.find(agent_id);
    std::optional<absl::Time> valid_after;
    if (credentials != credentials_.end()) {
      valid_after = credentials->second.valid_after;
    }
    AgentGate gate{agent.labels, agent.revoked_at, valid_after};
    if (!gate.empty()) {
      whole[agent_id] = gate;
    }
    auto seen = seen_gates_.find(agent_id);
    if (seen == seen_gates_.end() ? !gate.empty() : seen->second.gate != gate) {
      seen_gates_[agent_id] = SeenGate{std::move(gate), load};
    }
  }
  data.agent_gates_cursor = AgentGateCursor{gate_server_, load};
  if (gates_changed_since.has_value() && gates_changed_since->server == gate_server_ &&
      gates_changed_since->position <= load) {
    for (const auto& [agent_id, seen] : seen_gates_) {
      if (seen.changed_at > gates_changed_since->position) {
        data.agent_gates[agent_id] = seen.gate;
      }
    }
    data.agent_gates_complete = false;
  } else {
    data.agent_gates = std::move(whole);
  }
  return data;
}

void FakeStore::ForgetGateCursors() {
  absl::MutexLock lock(&mu_);
  gate_server_ = absl::StrCat("fake-store-", catalog_loads_);
}

// ---- TrustStore ----

absl::Status FakeStore::InsertRoot(const RootRecord& root, const AuditRecord& audit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("insert_root"));
  const int64_t newest = roots_.empty() ? 0 : roots_.rbegin()->first;
  if (newest != 0 && root.version != newest + 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("root version ", root.version, " does not follow the newest stored root v",
                     newest, "; roots are stored one version at a time"));
  }
  if (root.version < 1) {
    return absl::InternalError("root version violates a check constraint");
  }
  RETURN_IF_ERROR(CheckJson(audit.evidence_json, "audit evidence"));
  RootRecord stored = root;
  stored.uploaded_at = clock_.Now();
  roots_[root.version] = std::move(stored);
  AppendAudit(audit);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RootRecord>> FakeStore::ListRoots() {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("list_roots"));
  std::vector<RootRecord> out;
  for (const auto& [version, root] : roots_) {
    out.push_back(root);
  }
  return out;
}

absl::Status FakeStore::UpsertFloor(const FloorRecord& floor, const AuditRecord& audit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("upsert_floor"));
  auto stored = floors_.find(floor.channel);
  if (stored != floors_.end() && floor.min_version < stored->second.min_version) {
    return absl::FailedPreconditionError(
        absl::StrCat("channel ", floor.channel, " already has floor v", stored->second.min_version,
                     "; a floor only rises, v", floor.min_version, " is below it"));
  }
  if (floor.min_version < 1) {
    return absl::InternalError("floor min_version violates a check constraint");
  }
  RETURN_IF_ERROR(CheckJson(audit.evidence_json, "audit evidence"));
  RETURN_IF_ERROR(CheckClaim(audit));
  CommitClaim(audit);
  FloorRecord record = floor;
  record.uploaded_at = clock_.Now();
  floors_[floor.channel] = std::move(record);
  AppendAudit(audit);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<FloorRecord>> FakeStore::ListFloors() {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("list_floors"));
  std::vector<FloorRecord> out;
  for (const auto& [channel, floor] : floors_) {
    out.push_back(floor);
  }
  return out;
}

absl::StatusOr<std::optional<FloorRecord>> FakeStore::GetFloor(const std::string& channel) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("get_floor"));
  auto it = floors_.find(channel);
  if (it == floors_.end()) {
    return std::optional<FloorRecord>();
  }
  return std::optional<FloorRecord>(it->second);
}

// ---- PolicyStore ----

absl::StatusOr<PolicyRecord> FakeStore::PutPolicy(const std::string& name,
                                                  const std::string& body_json,
                                                  const AuditRecord& audit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("put_policy"));
  RETURN_IF_ERROR(CheckJson(body_json, "policy body"));
  RETURN_IF_ERROR(CheckJson(audit.evidence_json, "audit evidence"));
  RETURN_IF_ERROR(CheckClaim(audit));
  CommitClaim(audit);
  std::vector<PolicyRecord>& versions = policies_[name];
  PolicyRecord policy{name, static_cast<int64_t>(versions.size()) + 1, body_json, audit.actor,
                      clock_.Now()};
  versions.push_back(policy);
  // Like PgStore, the audit evidence names the version it created.
  AuditRecord entry = audit;
  nlohmann::json evidence = nlohmann::json::parse(entry.evidence_json);
  if (evidence.is_object()) {
    evidence["version"] = policy.version;
    entry.evidence_json = evidence.dump();
  }
  AppendAudit(std::move(entry));
  return policy;
}

absl::StatusOr<PolicyRecord> FakeStore::GetPolicy(const std::string& name, int64_t version) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("get_policy"));
  auto it = policies_.find(name);
  if (it == policies_.end() || it->second.empty()) {
    return absl::NotFoundError(
        version == 0 ? absl::StrCat("no policy named \"", name, "\"; see ringctl policy show")
                     : absl::StrCat("policy ", name, " has no version ", version));
  }
  const std::vector<PolicyRecord>& versions = it->second;
  if (version == 0) {
    return versions.back();
  }
  if (version < 0 || version > static_cast<int64_t>(versions.size())) {
    return absl::NotFoundError(absl::StrCat("policy ", name, " has no version ", version));
  }
  return versions[static_cast<size_t>(version - 1)];
}

absl::StatusOr<std::vector<PolicyRecord>> FakeStore::ListPolicies() {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("list_policies"));
  std::vector<PolicyRecord> out;
  for (const auto& [name, versions] : policies_) {
    if (!versions.empty()) {
      out.push_back(versions.back());
    }
  }
  return out;
}

// ---- RolloutStore ----

absl::Status FakeStore::CheckChange(const RolloutChange& change) {
  const RolloutRecord* rollout = FindRollout(change.rollout_id);
  if (rollout == nullptr) {
    return absl::NotFoundError(absl::StrCat("no rollout with id \"", change.rollout_id, "\""));
  }
  if (rollout->revision != change.expected_revision) {
    return absl::AbortedError(absl::StrCat("rollout ", change.rollout_id,
                                           " changed concurrently (expected revision ",
                                           change.expected_revision, "); re-read and retry"));
  }
  // The rollouts table's CHECK constraints; PostgreSQL reports them as INTERNAL.
  const TransitionPlan& plan = change.plan;
  if ((plan.broad_wave != kKeepWave && plan.broad_wave < 0) ||
      (plan.broad_fraction != kKeepWave && (plan.broad_fraction <= 0 || plan.broad_fraction > 1))) {
    return absl::InternalError(absl::StrCat("broad wave ", plan.broad_wave, " or fraction ",
                                            plan.broad_fraction, " violates a check constraint"));
  }
  return CheckJson(change.audit.evidence_json, "audit evidence");
}

void FakeStore::CommitChange(const RolloutChange& change) {
  RolloutRecord& rollout = *FindRollout(change.rollout_id);
  const TransitionPlan& plan = change.plan;
  const absl::Time now = clock_.Now();
  rollout.position = plan.to;
  ++rollout.revision;
  rollout.updated_at = now;
  if (plan.stage_changed) {
    rollout.stage_started_at = now;
  }
  // kKeepWave keeps the stored values (PgStore passes NULL for it).
  if (plan.broad_wave != kKeepWave) {
    rollout.broad_wave = plan.broad_wave;
  }
  if (plan.broad_fraction != kKeepWave) {
    rollout.broad_fraction = plan.broad_fraction;
  }
  if (plan.admitted_fraction != kKeepWave) {
    rollout.admitted_fraction = plan.admitted_fraction;
    rollout.admitted_hosts = 0;
  }
  auto content = content_.find({rollout.channel, rollout.version});
  if (content != content_.end()) {
    content->second.completed |= plan.mark_completed;
    content->second.revoked |= plan.revoke_version;
  }
  AppendAudit(change.audit);
}

absl::Status FakeStore::CreateRollout(const NewRollout& create) {
  const RolloutRecord& r = create.rollout;
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("create_rollout"));
  // The same checks, in the same order, as PgStore under the channel lock.
  auto content = content_.find({r.channel, r.version});
  if (content == content_.end()) {
    return absl::NotFoundError(
        absl::StrCat("channel ", r.channel, " has no version ", r.version, "; upload it first"));
  }
  if (content->second.revoked) {
    return absl::FailedPreconditionError(
        absl::StrCat(r.channel, " v", r.version, " was revoked by a rollback and can never ship"));
  }
  int64_t newest_completed = 0;
  for (const auto& [key, stored] : content_) {
    if (key.first == r.channel && stored.completed && !stored.revoked) {
      newest_completed = std::max(newest_completed, key.second);
    }
  }
  if (r.version <= newest_completed) {
    return absl::FailedPreconditionError(absl::StrCat(r.channel, " v", newest_completed,
                                                      " already completed; start a newer version"));
  }
  if (auto floor = floors_.find(r.channel);
      floor != floors_.end() && r.version < floor->second.min_version) {
    return absl::FailedPreconditionError(absl::StrCat(
        r.channel, " v", r.version, " is below the channel's floor v", floor->second.min_version,
        " (raised meanwhile); roll out v", floor->second.min_version, " or newer"));
  }
  const RolloutChange* supersede = create.supersede.has_value() ? &*create.supersede : nullptr;
  if (supersede != nullptr) {
    RETURN_IF_ERROR(CheckChange(*supersede));
  }
  if (FindRollout(r.id) != nullptr) {
    return absl::AlreadyExistsError(absl::StrCat("rollout ", r.id, " already exists"));
  }
  // The partial unique index: one unfinished rollout per channel, counted as
  // it would stand after the supersede change.
  if (!IsFinal(r.position.state)) {
    for (const RolloutRecord& other : rollouts_) {
      const bool finished_by_supersede = supersede != nullptr &&
                                         other.id == supersede->rollout_id &&
                                         IsFinal(supersede->plan.to.state);
      if (other.channel == r.channel && !IsFinal(other.position.state) && !finished_by_supersede) {
        return absl::FailedPreconditionError(absl::StrCat(
            "channel ", r.channel,
            " already has an unfinished rollout; finish, roll back or supersede it (--supersede)"));
      }
    }
  }
  for (const AuditRecord& audit : create.audit) {
    RETURN_IF_ERROR(CheckJson(audit.evidence_json, "audit evidence"));
  }
  // Every check passed: commit all of it.
  if (supersede != nullptr) {
    CommitChange(*supersede);
  }
  RolloutRecord stored = r;
  const absl::Time now = clock_.Now();
  stored.revision = 1;
  stored.created_at = now;
  stored.updated_at = now;
  stored.stage_started_at = now;
  rollouts_.push_back(std::move(stored));
  for (const AuditRecord& audit : create.audit) {
    AppendAudit(audit);
  }
  return absl::OkStatus();
}

absl::StatusOr<RolloutRecord> FakeStore::GetRollout(const std::string& id) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("get_rollout"));
  const RolloutRecord* rollout = FindRollout(id);
  if (rollout == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no rollout with id \"", id, "\"; see ringctl rollout list"));
  }
  return *rollout;
}

std::vector<RolloutRecord> FakeStore::SortedRollouts(const std::string& channel,
                                                     bool active_only) const {
  // Newest first; among equal creation times (a FakeClock that did not move)
  // the later created comes first.
  std::vector<RolloutRecord> out;
  for (auto it = rollouts_.rbegin(); it != rollouts_.rend(); ++it) {
    if ((channel.empty() || it->channel == channel) &&
        !(active_only && IsFinal(it->position.state))) {
      out.push_back(*it);
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const RolloutRecord& a, const RolloutRecord& b) {
    return a.created_at > b.created_at;
  });
  return out;
}

absl::StatusOr<std::vector<RolloutRecord>> FakeStore::ListRollouts(const std::string& channel,
                                                                   bool active_only, int limit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("list_rollouts"));
  RETURN_IF_ERROR(CheckLimit(limit));
  std::vector<RolloutRecord> out = SortedRollouts(channel, active_only);
  Truncate(out, limit);
  return out;
}

absl::StatusOr<std::optional<RolloutRecord>> FakeStore::GetUnfinishedRollout(
    const std::string& channel) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("get_unfinished_rollout"));
  std::vector<RolloutRecord> unfinished = SortedRollouts(channel, /*active_only=*/true);
  if (unfinished.empty()) {
    return std::nullopt;
  }
  return unfinished.front();
}

absl::Status FakeStore::ApplyRolloutChange(const RolloutChange& change) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("apply_rollout_change"));
  RETURN_IF_ERROR(CheckChange(change));
  RETURN_IF_ERROR(CheckClaim(change.audit));
  CommitClaim(change.audit);
  CommitChange(change);
  return absl::OkStatus();
}

absl::Status FakeStore::UpdateExposure(const std::string& rollout_id, int64_t expected_revision,
                                       double admitted_fraction, int64_t admitted_hosts) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("update_exposure"));
  RolloutRecord* rollout = FindRollout(rollout_id);
  if (rollout == nullptr) {
    return absl::NotFoundError(absl::StrCat("no rollout with id \"", rollout_id, "\""));
  }
  if (!(admitted_fraction >= 0 && admitted_fraction <= 1) || admitted_hosts < 0) {
    return absl::InternalError(absl::StrCat("admitted fraction ", admitted_fraction, " or hosts ",
                                            admitted_hosts, " violates a check constraint"));
  }
  if (rollout->revision != expected_revision) {
    return absl::AbortedError(absl::StrCat("rollout ", rollout_id,
                                           " changed concurrently (expected revision ",
                                           expected_revision, "); re-read and retry"));
  }
  rollout->admitted_fraction = std::max(rollout->admitted_fraction, admitted_fraction);
  rollout->admitted_hosts = admitted_hosts;
  return absl::OkStatus();
}

absl::Status FakeStore::UpsertDecision(const DecisionRecord& decision) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("upsert_decision"));
  if (FindRollout(decision.rollout_id) == nullptr) {
    return absl::NotFoundError(absl::StrCat("no rollout with id \"", decision.rollout_id, "\""));
  }
  RETURN_IF_ERROR(CheckJson(decision.evidence_json, "decision evidence"));
  decisions_[{decision.rollout_id, decision.ring}] = decision;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<DecisionRecord>> FakeStore::ListDecisions(
    const std::string& rollout_id) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("list_decisions"));
  std::vector<DecisionRecord> out;
  // Keys sort by rollout, then by ring order (canary, early, broad).
  for (auto it = decisions_.lower_bound({rollout_id, Ring::kCanary});
       it != decisions_.end() && it->first.first == rollout_id; ++it) {
    out.push_back(it->second);
  }
  return out;
}

// ---- TelemetrySink ----

void FakeStore::MergeHeartbeats(const std::vector<HeartbeatRow>& heartbeats) {
  // Like PgStore's set-based merges, only each agent's newest heartbeat and
  // each (agent, channel)'s newest report in the batch count.
  std::map<std::string, absl::Time> newest_heartbeat;
  std::map<std::pair<std::string, std::string>, std::pair<int64_t, absl::Time>> newest_report;
  std::map<std::string, const HeartbeatRow*> newest_row;
  std::map<std::pair<std::string, std::string>, absl::Time> first_of_boot;
  for (const HeartbeatRow& h : heartbeats) {
    auto [row, fresh] = newest_row.try_emplace(h.agent_id, &h);
    if (!fresh && row->second->at <= h.at) {
      row->second = &h;
    }
    auto [first, first_fresh] = first_of_boot.try_emplace({h.agent_id, h.boot_id}, h.at);
    if (!first_fresh && h.at < first->second) {
      first->second = h.at;
    }
    auto [seen, inserted] = newest_heartbeat.try_emplace(h.agent_id, h.at);
    if (!inserted && seen->second <= h.at) {
      seen->second = h.at;
    }
    for (const auto& [channel, version] : h.versions) {
      if (version < 0) {
        continue;
      }
      auto [report, added] = newest_report.try_emplace({h.agent_id, channel}, version, h.at);
      if (!added && report->second.second <= h.at) {
        report->second = {version, h.at};
      }
    }
  }
  for (const auto& [agent_id, at] : newest_heartbeat) {
    auto agent = agents_.find(agent_id);
    if (agent != agents_.end() &&
        (!agent->second.last_seen_at.has_value() || *agent->second.last_seen_at <= at)) {
      agent->second.last_seen_at = at;
      // Like PgStore: a new boot id starts a new boot at its first heartbeat in the batch.
      const HeartbeatRow& newest = *newest_row[agent_id];
      auto [boot, fresh] = boots_.try_emplace(agent_id, newest.boot_id, absl::Time());
      if (fresh || boot->second.first != newest.boot_id) {
        boot->second = {newest.boot_id, first_of_boot[{agent_id, newest.boot_id}]};
      }
      // Like migration 0016: a heartbeat's change carries its values.
      health_seen_[health_changes_.size()] = SeenChange{agent_id, at, boot->second.second};
      health_changes_.emplace_back(nullptr, agent_id);
    }
  }
  for (const auto& [key, report] : newest_report) {
    const auto& [version, at] = report;
    if (agents_.count(key.first) == 0) {
      continue;
    }
    auto [stored, inserted] = versions_.try_emplace(key, VersionInEffect{version, at, at});
    VersionInEffect& in_effect = stored->second;
    if (inserted) {
      health_changes_.emplace_back(&HealthAgents::agents, key.first);
      continue;
    }
    if (in_effect.reported_at > at) {
      continue;  // an older report than the stored one
    }
    if (in_effect.version != version) {
      in_effect.since = at;
      health_changes_.emplace_back(&HealthAgents::agents, key.first);
    }
    in_effect.version = version;
    in_effect.reported_at = at;
  }
}

absl::Status FakeStore::WriteTelemetry(const TelemetryRows& rows) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("write_telemetry"));
  for (const AgentUpsert& upsert : rows.agents) {
    auto [it, inserted] = agents_.try_emplace(upsert.agent_id);
    AgentRecord& agent = it->second;
    if (inserted) {
      agent.agent_id = upsert.agent_id;
      agent.enrolled_at = upsert.at;
    }
    agent.ring = upsert.ring;
    agent.labels = upsert.labels;
    agent.hostname = upsert.hostname;
  }
  MergeHeartbeats(rows.heartbeats);
  // Rows of agents never upserted are ignored, as PgStore's WHERE EXISTS.
  for (const ApplyRow& apply : rows.applies) {
    if (agents_.count(apply.agent_id) == 0) {
      continue;
    }
    auto [it, inserted] = applies_.try_emplace(
        ApplyKey{apply.agent_id, apply.channel, apply.version, apply.outcome}, apply);
    if (!inserted) {
      it->second.detail = apply.detail;  // the first time is kept
    }
  }
  for (const FetchRow& fetch : rows.fetches) {
    if (agents_.count(fetch.agent_id) != 0) {
      fetches_.try_emplace(FetchKey{fetch.agent_id, fetch.channel, fetch.version}, fetch);
    }
  }
  for (const CrashRow& crash : rows.crashes) {
    if (agents_.count(crash.agent_id) != 0) {
      crashes_.push_back(crash);
    }
  }
  AppendCopies(written_.fetches, rows.fetches);
  AppendCopies(written_.agents, rows.agents);
  AppendCopies(written_.heartbeats, rows.heartbeats);
  AppendCopies(written_.applies, rows.applies);
  for (const HealthEventRow& event : rows.health_events) {
    // Stored once, as PgStore's unique index does.
    const bool seen =
        std::any_of(health_events_.begin(), health_events_.end(), [&](const HealthEventRow& e) {
          return e.agent_id == event.agent_id && e.channel == event.channel &&
                 e.version == event.version && e.kind == event.kind && e.at == event.at;
        });
    if (agents_.count(event.agent_id) != 0 && !seen) {
      health_events_.push_back(event);
    }
  }
  AppendCopies(written_.crashes, rows.crashes);
  AppendCopies(written_.health_events, rows.health_events);
  auto note = [this](const auto& of_kind, HealthKind kind) {
    for (const auto& row : of_kind) {
      health_changes_.emplace_back(kind, row.agent_id);
    }
  };
  note(rows.fetches, &HealthAgents::fetches);
  note(rows.agents, &HealthAgents::agents);
  note(rows.applies, &HealthAgents::applies);
  note(rows.crashes, &HealthAgents::crashes);
  note(rows.health_events, &HealthAgents::health_events);
  return absl::OkStatus();
}

absl::StatusOr<TelemetryUpkeep> FakeStore::MaintainTelemetry(absl::Duration retention,
                                                             absl::Time now) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("maintain_telemetry"));
  if (retention < absl::Hours(24)) {
    return absl::InvalidArgumentError("telemetry retention must be at least one day");
  }
  const absl::Time cutoff = now - retention;
  auto expired = [&](absl::Time at) {
    const absl::Time day_end = absl::FromUnixSeconds((absl::ToUnixSeconds(at) / 86400 + 1) * 86400);
    return day_end <= cutoff;
  };
  TelemetryUpkeep upkeep;
  const size_t before = crashes_.size() + health_events_.size();
  auto expire = [&](HealthKind kind) {
    return [&, kind](const auto& row) {
      if (!expired(row.at)) {
        return false;
      }
      health_changes_.emplace_back(kind, row.agent_id);
      return true;
    };
  };
  crashes_.erase(std::remove_if(crashes_.begin(), crashes_.end(), expire(&HealthAgents::crashes)),
                 crashes_.end());
  health_events_.erase(std::remove_if(health_events_.begin(), health_events_.end(),
                                      expire(&HealthAgents::health_events)),
                       health_events_.end());
  upkeep.rows_expired = static_cast<int64_t>(before - crashes_.size() - health_events_.size());
  return upkeep;
}

// ---- HealthSource ----

absl::StatusOr<RolloutHealthRows> FakeStore::LoadRolloutHealth(const HealthQuery& query) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("load_rollout_health"));
  // A read of named agents reads each kind for its own list, as PgStore does.
  auto wanted = [&query](HealthKind kind) {
    return [&query, kind](const std::string& agent_id) {
      if (!query.only.has_value()) {
        return true;
      }
      const std::vector<std::string>& ids = (*query.only).*kind;
      return std::find(ids.begin(), ids.end(), agent_id) != ids.end();
    };
  };
  RolloutHealthRows out;
  for (const auto& [agent_id, agent] : agents_) {
    if (!wanted(&HealthAgents::agents)(agent_id) ||
        CarriesLabelOf(agent.labels, query.holding_pins)) {
      continue;
    }
    AgentHealthRow row;
    row.agent_id = agent_id;
    row.ring = agent.ring;
    row.last_seen = agent.last_seen_at;
    if (auto boot = boots_.find(agent_id); boot != boots_.end()) {
      row.boot_since = boot->second.second;
    }
    auto in_effect = versions_.find({agent_id, query.channel});
    if (in_effect != versions_.end()) {
      row.version = in_effect->second.version;
      row.since = in_effect->second.since;
    }
    out.agents.push_back(std::move(row));
  }
  // PgStore selects neither apply nor crash details.
  for (const auto& [key, apply] : applies_) {
    if (wanted(&HealthAgents::applies)(apply.agent_id) && apply.channel == query.channel &&
        apply.version == query.version) {
      out.applies.push_back(apply);
      out.applies.back().detail.clear();
    }
  }
  for (const auto& [key, fetch] : fetches_) {
    if (wanted(&HealthAgents::fetches)(fetch.agent_id) && fetch.channel == query.channel &&
        fetch.version == query.version) {
      out.fetches.push_back(fetch);
    }
  }
  for (const CrashRow& crash : crashes_) {
    if (wanted(&HealthAgents::crashes)(crash.agent_id) && crash.channel == query.channel &&
        (crash.version == query.version || crash.version == query.previous_version) &&
        crash.at >= query.since) {
      out.crashes.push_back(crash);
      out.crashes.back().detail.clear();
    }
  }
  for (const HealthEventRow& event : health_events_) {
    if (wanted(&HealthAgents::health_events)(event.agent_id) && event.channel == query.channel &&
        (event.version == query.version || event.version == query.previous_version) &&
        event.at >= query.since) {
      out.health_events.push_back(event);
      out.health_events.back().detail.clear();
    }
  }
  return out;
}

absl::StatusOr<HealthChanges> FakeStore::ReadHealthChanges(std::optional<uint64_t> after) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("read_health_changes"));
  HealthChanges changes;
  changes.horizon = held_at_.value_or(health_changes_.size());
  changes.held_open = held_at_.has_value() || busy_changes_;
  if (after.has_value()) {
    if (*after > changes.horizon) {
      return absl::InvalidArgumentError("horizon from the future");
    }
    std::map<std::string, SeenChange> seen;  // the newest per agent
    for (size_t i = *after; i < changes.horizon; ++i) {
      if (health_changes_[i].first == nullptr) {
        const SeenChange& change = health_seen_.at(i);
        auto [it, fresh] = seen.try_emplace(change.agent_id, change);
        if (!fresh && it->second.last_seen <= change.last_seen) {
          it->second = change;
        }
      }
    }
    for (auto& [id, change] : seen) {
      changes.seen.push_back(std::move(change));
    }
    for (HealthKind kind : {&HealthAgents::agents, &HealthAgents::applies, &HealthAgents::fetches,
                            &HealthAgents::crashes, &HealthAgents::health_events}) {
      std::set<std::string> ids;
      for (size_t i = *after; i < changes.horizon; ++i) {
        if (health_changes_[i].first == kind) {
          ids.insert(health_changes_[i].second);
        }
      }
      (changes.changed.*kind).assign(ids.begin(), ids.end());
    }
  }
  return changes;
}

void FakeStore::HoldHealthChanges(bool hold) {
  absl::MutexLock lock(&mu_);
  if (!hold) {
    held_at_.reset();
  } else if (!held_at_.has_value()) {
    held_at_ = health_changes_.size();
  }
}

void FakeStore::BusyHealthChanges(bool busy) {
  absl::MutexLock lock(&mu_);
  busy_changes_ = busy;
}

absl::Status FakeStore::TrimHealthChanges(absl::Duration) {
  absl::MutexLock lock(&mu_);
  return BeginCall("trim_health_changes");
}

absl::StatusOr<std::pair<std::vector<AgentRecord>, int64_t>> FakeStore::ListAgents(
    std::optional<Ring> ring, int limit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("list_agents"));
  RETURN_IF_ERROR(CheckLimit(limit));
  std::vector<AgentRecord> agents;
  int64_t total = 0;
  for (const auto& [agent_id, agent] : agents_) {  // by agent id
    if (ring.has_value() && agent.ring != *ring) {
      continue;
    }
    ++total;
    if (agents.size() >= static_cast<size_t>(limit)) {
      continue;
    }
    agents.push_back(agent);
    for (const auto& [key, in_effect] : versions_) {
      if (key.first == agent_id) {
        agents.back().versions[key.second] = in_effect.version;
      }
    }
  }
  return std::make_pair(std::move(agents), total);
}

absl::StatusOr<FleetStats> FakeStore::LoadFleetStats() {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("load_fleet_stats"));
  FleetStats stats;
  for (const RolloutRecord& r : rollouts_) {
    ++stats.rollouts[{r.channel, std::string(RolloutStateName(r.position.state))}];
  }
  const absl::Time seen_after = clock_.Now() - absl::Minutes(5);
  for (const auto& [agent_id, agent] : agents_) {
    ++stats.agents_by_ring[std::string(RingName(agent.ring))];
    if (agent.last_seen_at.has_value() && *agent.last_seen_at > seen_after) {
      ++stats.agents_seen_5m;
    }
  }
  for (const auto& [key, in_effect] : versions_) {
    ++stats.agents_by_version[{key.second, in_effect.version}];
  }
  return stats;
}

// ---- AuditLog ----

absl::StatusOr<std::vector<AuditRecord>> FakeStore::ListAudit(const std::string& rollout_id,
                                                              int limit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("list_audit"));
  RETURN_IF_ERROR(CheckLimit(limit));
  std::vector<AuditRecord> out;
  for (auto it = audit_.rbegin(); it != audit_.rend(); ++it) {
    if (rollout_id.empty() || it->rollout_id == rollout_id) {
      out.push_back(*it);
    }
  }
  Truncate(out, limit);
  return out;
}

absl::Status FakeStore::CreateEnrollmentToken(const EnrollmentTokenRecord& token,
                                              const AuditRecord& audit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("create_enrollment_token"));
  if (enrollment_tokens_.count(token.id) > 0) {
    return absl::AlreadyExistsError("duplicate key value violates unique constraint");
  }
  if (token.max_uses < 1 || token.secret_sha256.size() != 32) {
    return absl::InternalError("enrollment token violates a check constraint");
  }
  EnrollmentTokenRecord stored = token;
  stored.uses = 0;
  stored.created_at = clock_.Now();
  enrollment_tokens_[token.id] = std::move(stored);
  AppendAudit(audit);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<EnrollmentTokenRecord>> FakeStore::ListEnrollmentTokens() {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("list_enrollment_tokens"));
  std::vector<EnrollmentTokenRecord> out;
  for (const auto& [id, token] : enrollment_tokens_) {
    out.push_back(token);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.created_at > b.created_at; });
  return out;
}

absl::StatusOr<EnrollmentTokenRecord> FakeStore::RevokeEnrollmentToken(const std::string& id,
                                                                       const AuditRecord& audit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("revoke_enrollment_token"));
  auto it = enrollment_tokens_.find(id);
  if (it == enrollment_tokens_.end()) {
    return absl::NotFoundError(absl::StrCat("no enrollment token ", id));
  }
  if (!it->second.revoked_at.has_value()) {
    it->second.revoked_at = clock_.Now();
  }
  AppendAudit(audit);
  return it->second;
}

absl::StatusOr<EnrolledAgent> FakeStore::EnrollAgent(const EnrollmentRequest& request) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("enroll_agent"));
  auto token = enrollment_tokens_.find(request.token_id);
  if (token == enrollment_tokens_.end() ||
      !SecretMatches(ParsedToken{request.token_id, request.presented_sha256},
                     token->second.secret_sha256)) {
    return absl::PermissionDeniedError(
        "enrollment token is not known; ask an admin for one (ringctl enroll-token create)");
  }
  std::optional<ExistingAgent> existing;
  if (auto agent = agents_.find(request.agent_id); agent != agents_.end()) {
    existing =
        ExistingAgent{agent->second.revoked_at, credentials_[request.agent_id].reenroll_allowed};
  }
  const EnrollmentTokenRecord& t = token->second;
  RETURN_IF_ERROR(
      AdmitEnrollment(EnrollmentTokenState{t.id, t.max_uses, t.uses, t.expires_at, t.revoked_at},
                      existing, request.holds_credential, request.agent_id, request.now));
  EnrolledAgent out{request.ring_of(t.labels), t.labels};
  AgentRecord& agent = agents_[request.agent_id];
  agent.agent_id = request.agent_id;
  agent.labels = t.labels;
  agent.ring = out.ring;
  agent.hostname = request.hostname;
  agent.reported_labels = request.reported_labels;
  agent.enrolled_with = t.id;
  agent.enrolled_at = clock_.Now();
  credentials_[request.agent_id].reenroll_allowed = false;
  health_changes_.emplace_back(&HealthAgents::agents, request.agent_id);
  token->second.uses++;
  return out;
}

absl::StatusOr<AgentRecord> FakeStore::LabelAgent(const std::string& agent_id,
                                                  const std::map<std::string, std::string>& labels,
                                                  Ring ring, const AuditRecord& audit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("label_agent"));
  auto agent = agents_.find(agent_id);
  if (agent == agents_.end()) {
    return absl::NotFoundError(absl::StrCat("no agent ", agent_id, " is enrolled"));
  }
  agent->second.labels = labels;
  health_changes_.emplace_back(&HealthAgents::agents, agent_id);
  agent->second.ring = ring;
  AppendAudit(audit);
  return agent->second;
}

absl::StatusOr<AgentRecord> FakeStore::RevokeAgent(const std::string& agent_id,
                                                   const AuditRecord& audit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("revoke_agent"));
  auto agent = agents_.find(agent_id);
  if (agent == agents_.end()) {
    return absl::NotFoundError(absl::StrCat("no agent ", agent_id, " is enrolled"));
  }
  if (!agent->second.revoked_at.has_value()) {
    agent->second.revoked_at = clock_.Now();
    health_changes_.emplace_back(&HealthAgents::agents, agent_id);
  }
  AppendAudit(audit);
  return agent->second;
}

absl::StatusOr<AgentRecord> FakeStore::ResetAgent(const std::string& agent_id,
                                                  const AuditRecord& audit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("reset_agent"));
  auto agent = agents_.find(agent_id);
  if (agent == agents_.end()) {
    return absl::NotFoundError(absl::StrCat("no agent ", agent_id, " is enrolled"));
  }
  agent->second.revoked_at.reset();
  health_changes_.emplace_back(&HealthAgents::agents, agent_id);
  AgentCredentials& credentials = credentials_[agent_id];
  credentials.reenroll_allowed = true;
  credentials.valid_after = absl::FromUnixSeconds(absl::ToUnixSeconds(clock_.Now()));
  AppendAudit(audit);
  return agent->second;
}

absl::StatusOr<std::vector<AuditRecord>> FakeStore::ListAuditOldestFirst(
    const std::string& rollout_id, int64_t after_seq, int limit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("list_audit_oldest_first"));
  RETURN_IF_ERROR(CheckLimit(limit));
  std::vector<AuditRecord> out;
  for (const AuditRecord& a : audit_) {
    if (a.seq > after_seq && (rollout_id.empty() || a.rollout_id == rollout_id)) {
      out.push_back(a);
    }
  }
  Truncate(out, limit);
  return out;
}

// ---- ApprovalStore ----

bool FakeStore::IsOpen(const ApprovalRecord& request, absl::Time at) const {
  return EffectiveApprovalState(request.state, request.expires_at, at) == ApprovalState::kPending;
}

absl::Status FakeStore::CheckClaim(const AuditRecord& audit) const {
  if (!audit.approval.has_value()) {
    return absl::OkStatus();
  }
  auto it = approvals_.find(audit.approval->request_id);
  if (it == approvals_.end() || !IsOpen(it->second, audit.approval->at)) {
    return absl::FailedPreconditionError(
        absl::StrCat("approval request ", audit.approval->request_id,
                     " is no longer pending (decided meanwhile, or expired); nothing was changed"));
  }
  return absl::OkStatus();
}

void FakeStore::CommitClaim(const AuditRecord& audit) {
  if (!audit.approval.has_value()) {
    return;
  }
  const ApprovalClaim& claim = *audit.approval;
  ApprovalRecord& request = approvals_.at(claim.request_id);
  request.state = ApprovalState::kApproved;
  request.decided_by = claim.approved_by;
  request.decided_at = claim.at;
  request.decision_reason = claim.reason;
  AppendAudit(ApproverAudit(audit));
}

absl::StatusOr<ApprovalRecord> FakeStore::OpenApproval(const ApprovalRecord& request,
                                                       const AuditRecord& audit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("open_approval"));
  RETURN_IF_ERROR(CheckJson(request.request_json, "approval request"));
  RETURN_IF_ERROR(CheckJson(audit.evidence_json, "audit evidence"));
  if (request.expires_at <= request.requested_at) {
    return absl::InternalError("approval expiry violates a check constraint");
  }
  for (auto& [id, stored] : approvals_) {
    if (stored.dedupe_key != request.dedupe_key || stored.state != ApprovalState::kPending) {
      continue;
    }
    if (IsOpen(stored, request.requested_at)) {
      return stored;
    }
    stored.state = ApprovalState::kExpired;
  }
  if (approvals_.count(request.id) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("approval request ", request.id, " exists"));
  }
  ApprovalRecord stored = request;
  stored.state = ApprovalState::kPending;
  approvals_[stored.id] = stored;
  AppendAudit(audit);
  return stored;
}

absl::StatusOr<ApprovalRecord> FakeStore::GetApproval(const std::string& id) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("get_approval"));
  auto it = approvals_.find(id);
  if (it == approvals_.end()) {
    return absl::NotFoundError(
        absl::StrCat("no approval request \"", id, "\"; see ringctl approvals list"));
  }
  return it->second;
}

absl::StatusOr<std::vector<ApprovalRecord>> FakeStore::ListApprovals(bool pending_only,
                                                                     absl::Time now, int limit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("list_approvals"));
  RETURN_IF_ERROR(CheckLimit(limit));
  std::vector<ApprovalRecord> out;
  for (const auto& [id, request] : approvals_) {
    if (!pending_only || IsOpen(request, now)) {
      out.push_back(request);
    }
  }
  std::sort(out.begin(), out.end(), [](const ApprovalRecord& a, const ApprovalRecord& b) {
    return a.requested_at != b.requested_at ? a.requested_at > b.requested_at : a.id < b.id;
  });
  Truncate(out, limit);
  return out;
}

absl::Status FakeStore::RejectApproval(const std::string& id, const std::string& decided_by,
                                       const std::string& reason, absl::Time at,
                                       const AuditRecord& audit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("reject_approval"));
  RETURN_IF_ERROR(CheckJson(audit.evidence_json, "audit evidence"));
  auto it = approvals_.find(id);
  if (it == approvals_.end() || !IsOpen(it->second, at)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "approval request ", id, " is no longer pending (decided meanwhile, or expired)"));
  }
  it->second.state = ApprovalState::kRejected;
  it->second.decided_by = decided_by;
  it->second.decided_at = at;
  it->second.decision_reason = reason;
  AppendAudit(audit);
  return absl::OkStatus();
}

}  // namespace ringwarden::testing

#include "server/core/rollout_manager.h"

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "server/core/controller.h"
#include "server/core/health_feed.h"
#include "server/core/policy_json.h"
#include "server/domain/transition.h"

namespace ringwarden {
namespace {

absl::Status ValidateReason(const std::string& reason, bool required, absl::string_view verb) {
  if (required && absl::StripAsciiWhitespace(reason).empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(verb, " needs a reason (--reason); it goes into the audit log"));
  }
  if (reason.size() > kMaxReasonBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("reason is longer than ", kMaxReasonBytes, " bytes"));
  }
  return absl::OkStatus();
}

std::string ProgressEvidence(const std::vector<RingProgressRecord>& rings) {
  nlohmann::json doc = nlohmann::json::object();
  for (const RingProgressRecord& p : rings) {
    doc["rings"][std::string(RingName(p.ring))] = {{"targeted", p.targeted},
                                                   {"applied", p.applied},
                                                   {"healthy", p.healthy},
                                                   {"failed", p.failed}};
  }
  return doc.dump();
}

AuditRecord Audit(const Principal& actor, std::string action, const std::string& rollout_id,
                  absl::string_view from, absl::string_view to, const std::string& reason,
                  std::string evidence = "{}") {
  AuditRecord a;
  a.actor = actor.name;
  a.action = std::move(action);
  a.rollout_id = rollout_id;
  a.from_state = std::string(from);
  a.to_state = std::string(to);
  a.reason = reason;
  a.evidence_json = std::move(evidence);
  return a;
}

}  // namespace

RolloutManager::RolloutManager(Store& store, SnapshotHolder& snapshots, PolicyCache& policies,
                               ReleaseKeysSource release_keys, ManifestDecoder decode_manifest,
                               const Clock& clock)
    : store_(store),
      snapshots_(snapshots),
      policies_(policies),
      release_keys_(std::move(release_keys)),
      decode_manifest_(std::move(decode_manifest)),
      clock_(clock),
      approvals_(store, policies, clock) {
  RegisterExecutors();
}

RolloutManager::RolloutManager(Store& store, SnapshotHolder& snapshots, PolicyCache& policies,
                               const TrustedKeys& trusted_keys, ManifestDecoder decode_manifest,
                               const Clock& clock)
    : RolloutManager(
          store, snapshots, policies, [&trusted_keys] { return trusted_keys; },
          std::move(decode_manifest), clock) {}

std::string RolloutManager::NewRolloutId() {
  absl::MutexLock lock(&rng_mu_);
  return absl::StrFormat("ro-%08x", absl::Uniform<uint32_t>(rng_));
}

void RolloutManager::RefreshSnapshot() {
  absl::Status status = snapshots_.Refresh();
  if (!status.ok()) {
    // The change is committed; the periodic refresh will pick it up.
    std::cerr << "snapshot refresh after a change failed: " << status << std::endl;
  }
}

absl::StatusOr<ContentRecord> RolloutManager::UploadContent(const std::string& envelope_json,
                                                            const std::string& payload,
                                                            const Principal& actor) {
  if (payload.empty()) {
    return absl::InvalidArgumentError("payload is empty; content must be at least 1 byte");
  }
  if (payload.size() > kMaxPayloadBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("payload is ", payload.size(), " bytes; the limit is ", kMaxPayloadBytes));
  }
  ASSIGN_OR_RETURN(DsseEnvelope envelope, ParseEnvelopeJson(envelope_json));
  ASSIGN_OR_RETURN(VerifiedEnvelope verified,
                   release_keys_().Verify(envelope, kManifestPayloadType));
  // Parse the exact bytes that were verified; nothing is re-serialized.
  ASSIGN_OR_RETURN(ContentManifest manifest, decode_manifest_(verified.payload));
  RETURN_IF_ERROR(ValidateChannelName(manifest.channel));
  if (manifest.version < 1) {
    return absl::InvalidArgumentError("manifest version must be >= 1");
  }
  if (manifest.size != static_cast<int64_t>(payload.size())) {
    return absl::InvalidArgumentError(absl::StrCat("payload is ", payload.size(),
                                                   " bytes but the signed manifest says ",
                                                   manifest.size, "; wrong file?"));
  }
  const std::string digest = Sha256Hex(payload);
  if (manifest.sha256 != digest) {
    return absl::InvalidArgumentError(
        absl::StrCat("payload SHA-256 ", digest, " does not match the signed manifest's ",
                     manifest.sha256, "; wrong file or tampered content"));
  }
  ContentRecord c;
  c.channel = manifest.channel;
  c.version = manifest.version;
  c.sha256 = digest;
  c.size = manifest.size;
  c.envelope_json = envelope_json;
  c.payload = payload;
  c.key_ids = verified.key_ids;
  c.description = manifest.description.substr(0, 1024);
  c.uploaded_at = clock_.Now();
  c.uploaded_by = actor.name;
  nlohmann::json evidence = {{"channel", c.channel},
                             {"version", c.version},
                             {"sha256", c.sha256},
                             {"size", c.size},
                             {"key_ids", c.key_ids}};
  RETURN_IF_ERROR(
      store_.InsertContent(c, Audit(actor, "content.upload", "", "", "", "", evidence.dump())));
  c.payload.clear();
  return c;
}

absl::StatusOr<RolloutView> RolloutManager::StartRollout(const std::string& channel,
                                                         int64_t version, bool hold, bool supersede,
                                                         const std::string& reason,
                                                         const std::string& policy_name,
                                                         const Principal& actor) {
  RETURN_IF_ERROR(ValidateChannelName(channel));
  const std::string policy_to_use = policy_name.empty() ? "default" : policy_name;
  RETURN_IF_ERROR(ValidateChannelName(policy_to_use));
  ASSIGN_OR_RETURN(RolloutPolicy policy, policies_.Get(policy_to_use, 0));
  if (absl::Status timings = CheckPolicyTimings(policy, report_gap_, report_gap_text_);
      !timings.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("policy ", policy.name, " v", policy.version, ": ", timings.message()));
  }
  RETURN_IF_ERROR(ValidateReason(reason, false, "start"));
  if (version < 1) {
    return absl::InvalidArgumentError("version must be >= 1");
  }
  ASSIGN_OR_RETURN(std::vector<ContentRecord> content, store_.ListContent(channel));
  const ContentRecord* target = nullptr;
  int64_t newest_completed = 0;
  for (const ContentRecord& c : content) {
    if (c.version == version) {
      target = &c;
    }
    if (c.completed && !c.revoked) {
      newest_completed = std::max(newest_completed, c.version);
    }
  }
  if (target == nullptr) {
    return absl::NotFoundError(absl::StrCat("channel ", channel, " has no version ", version,
                                            "; upload it first (ringctl content upload)"));
  }
  if (target->revoked) {
    return absl::FailedPreconditionError(
        absl::StrCat(channel, " v", version, " was revoked by a rollback and can never ship"));
  }
  if (version <= newest_completed) {
    return absl::FailedPreconditionError(
        absl::StrCat(channel, " v", newest_completed, " already completed; start a newer version"));
  }
  ASSIGN_OR_RETURN(std::optional<FloorRecord> floor, store_.GetFloor(channel));
  if (floor.has_value() && version < floor->min_version) {
    return absl::FailedPreconditionError(absl::StrCat(
        channel, " v", version, " is below the channel's release-signed floor v",
        floor->min_version, "; agents refuse it. Roll out v", floor->min_version, " or newer"));
  }

  NewRollout create;
  ASSIGN_OR_RETURN(std::optional<RolloutRecord> unfinished, store_.GetUnfinishedRollout(channel));
  if (unfinished.has_value()) {
    if (!supersede) {
      return absl::FailedPreconditionError(absl::StrCat(
          "channel ", channel, " already has unfinished rollout ", unfinished->id, " of v",
          unfinished->version, " (", RolloutStateName(unfinished->position.state),
          "); finish or roll it back, or pass --supersede to cancel it"));
    }
    if (unfinished->version >= version) {
      return absl::FailedPreconditionError(
          absl::StrCat("rollout ", unfinished->id, " ships v", unfinished->version,
                       "; a superseding rollout must ship a newer version"));
    }
    RolloutChange cancel;
    cancel.rollout_id = unfinished->id;
    cancel.expected_revision = unfinished->revision;
    ASSIGN_OR_RETURN(cancel.plan,
                     PlanTransition(unfinished->position, unfinished->broad_wave,
                                    RolloutAction::kCancel, policy, Initiator::kSupersede));
    cancel.audit = Audit(
        actor, cancel.plan.audit_action, unfinished->id, RolloutStateName(cancel.plan.from.state),
        RolloutStateName(cancel.plan.to.state),
        absl::StrCat("superseded by v", version, reason.empty() ? "" : absl::StrCat(": ", reason)));
    create.supersede = cancel;
  }

  RolloutRecord& r = create.rollout;
  r.id = NewRolloutId();
  r.channel = channel;
  r.version = version;
  r.position = InitialPosition();
  r.previous_version = newest_completed;
  r.created_by = actor.name;
  r.policy_name = policy.name;
  r.policy_version = policy.version;
  const nlohmann::json evidence = {{"policy", absl::StrCat(policy.name, " v", policy.version)},
                                   {"channel", channel},
                                   {"version", version},
                                   {"previous_version", newest_completed},
                                   {"sha256", target->sha256}};
  create.audit.push_back(Audit(actor, "rollout.create", r.id, "",
                               RolloutStateName(r.position.state), reason, evidence.dump()));
  if (!hold) {
    // Started at once: the first promotion commits with the creation.
    ASSIGN_OR_RETURN(TransitionPlan start,
                     PlanTransition(r.position, r.broad_wave, RolloutAction::kPromote, policy,
                                    Initiator::kOperator));
    r.position = start.to;
    if (start.admitted_fraction != kKeepWave) {
      r.admitted_fraction = start.admitted_fraction;
    }
    create.audit.push_back(Audit(actor, start.audit_action, r.id,
                                 RolloutStateName(start.from.state),
                                 RolloutStateName(start.to.state), reason));
  }
  RETURN_IF_ERROR(store_.CreateRollout(create));
  if (r.admitted_fraction == 0) {
    AdmitFirstHosts(r.id);
  }
  RefreshSnapshot();
  return Get(r.id);
}

absl::StatusOr<RolloutView> RolloutManager::Act(const std::string& id, RolloutAction action,
                                                const std::string& reason,
                                                int64_t expected_revision, bool force,
                                                const Principal& actor,
                                                const ApprovalClaim* approved) {
  RETURN_IF_ERROR(ValidateReason(reason, action != RolloutAction::kPromote || force,
                                 force ? "a forced promotion" : RolloutActionName(action)));
  ASSIGN_OR_RETURN(RolloutView before, Get(id));
  const RolloutRecord& r = before.rollout;
  if (expected_revision != 0 && expected_revision != r.revision) {
    return absl::AbortedError(absl::StrCat("rollout ", id, " is at revision ", r.revision, ", not ",
                                           expected_revision, "; re-read and retry"));
  }
  RolloutChange change;
  change.rollout_id = id;
  change.expected_revision = r.revision;
  nlohmann::json evidence = nlohmann::json::parse(ProgressEvidence(before.rings));
  ASSIGN_OR_RETURN(RolloutPolicy policy, policies_.Get(r.policy_name, r.policy_version));
  Initiator initiator = Initiator::kOperator;
  if (action == RolloutAction::kPromote) {
    if (std::shared_ptr<const AssignmentSnapshot> snapshot = snapshots_.Current();
        snapshot != nullptr && snapshot->emergency_stop()) {
      return absl::FailedPreconditionError(
          "an emergency stop is active; lift it first (ringctl emergency-stop --lift --reason)");
    }
    if (std::optional<Ring> ring = StageRing(r.position.state); ring.has_value()) {
      ASSIGN_OR_RETURN(std::vector<DecisionRecord> decisions, store_.ListDecisions(id));
      const DecisionRecord* latest = nullptr;
      for (const DecisionRecord& d : decisions) {
        if (d.ring == *ring) {
          latest = &d;
        }
      }
      // A pass counts only for the revision it judged: not for an earlier
      // stage, wave or the evidence a resume set aside.
      const bool gate_passed =
          latest != nullptr && latest->gate_passed && latest->revision == r.revision;
      if (!gate_passed && !force) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the ", RingName(*ring),
            " gate has not passed: ", latest == nullptr ? "not evaluated yet" : latest->summary,
            "; wait, or promote with --force --reason"));
      }
      evidence["gate_passed"] = gate_passed;
      if (latest != nullptr) {
        evidence["decision"] = latest->summary;
      }
      if (force && !gate_passed) {
        initiator = Initiator::kOperatorForced;
      }
    }
  }
  ASSIGN_OR_RETURN(change.plan,
                   PlanTransition(r.position, r.broad_wave, action, policy, initiator));
  if (change.plan.next_wave) {
    evidence["broad_wave"] = change.plan.broad_wave;
    evidence["broad_fraction"] = change.plan.broad_fraction;
  }
  change.audit =
      Audit(actor, change.plan.audit_action, id, RolloutStateName(change.plan.from.state),
            RolloutStateName(change.plan.to.state), reason, evidence.dump());
  if (approved != nullptr) {
    ApprovalDesk::Attach(*approved, change.audit);
  } else if (std::vector<GatedStep> steps = StepsNeedingApproval(
                 policy.two_person, StepAsk::Rollout(r.position, change.plan.to,
                                                     force && action == RolloutAction::kPromote));
             !steps.empty()) {
    return approvals_.Hold(
        RolloutApprovalAsk(r, action, reason, force, change.plan.to, std::move(steps), policy),
        actor);
  }
  RETURN_IF_ERROR(store_.ApplyRolloutChange(change));
  if (change.plan.admitted_fraction == 0) {
    AdmitFirstHosts(id);
  }
  RefreshSnapshot();
  return Get(id);
}

void RolloutManager::AdmitFirstHosts(const std::string& id) {
  RolloutView view;
  absl::StatusOr<RolloutRecord> r = store_.GetRollout(id);
  absl::Status status = r.status();
  if (status.ok()) {
    view.rollout = *r;
    status = Progress(view);
  }
  if (status.ok() && view.exposure.enabled && view.exposure.grew) {
    status = store_.UpdateExposure(id, r->revision, view.exposure.admitted_fraction,
                                   view.exposure.admitted);
  }
  if (!status.ok() && !absl::IsAborted(status)) {
    // The stage is committed; the controller admits the first hosts on its next period.
    std::cerr << "admitting the first hosts of " << id << " failed: " << status << std::endl;
  }
}

absl::StatusOr<RolloutView> RolloutManager::Get(const std::string& id) {
  if (id.empty() || id.size() > 64) {
    return absl::InvalidArgumentError("rollout id must be 1-64 characters");
  }
  RolloutView view;
  ASSIGN_OR_RETURN(view.rollout, store_.GetRollout(id));
  RETURN_IF_ERROR(Progress(view));
  return view;
}

absl::Status RolloutManager::Progress(RolloutView& view) {
  const RolloutRecord& rollout = view.rollout;
  ASSIGN_OR_RETURN(RolloutPolicy policy,
                   policies_.Get(rollout.policy_name, rollout.policy_version));
  std::vector<LabelPin> pins;
  std::string seed = RingPolicy().seed;
  if (std::shared_ptr<const AssignmentSnapshot> snapshot = snapshots_.Current();
      snapshot != nullptr) {
    pins = snapshot->pins();
    seed = snapshot->ring_policy().seed;
  } else {
    ASSIGN_OR_RETURN(pins, store_.ListPins());
  }
  ASSIGN_OR_RETURN(RolloutHealthRows rows,
                   store_.LoadRolloutHealth(HealthQueryFor(rollout, rollout.created_at, pins)));
  const absl::Time now = clock_.Now();
  const EvidenceByAgent evidence = GroupByAgent(std::move(rows));
  view.rings = ProgressByRing(evidence, rollout, policy, now);
  if (IsStage(rollout.position.state)) {
    // What the controller would plan now, without storing it: the stored bound decides polls.
    const HealthLedger ledger =
        BuildLedger(evidence, rollout, rollout.stage_started_at, policy.health_events);
    view.exposure = ExposureFor(evidence, ledger, rollout, policy, seed, now);
  }
  return absl::OkStatus();
}

absl::Status RolloutManager::SetEmergencyStop(bool active, const std::string& reason,
                                              const Principal& actor) {
  RETURN_IF_ERROR(ValidateReason(reason, true, "emergency stop"));
  RETURN_IF_ERROR(store_.SetEmergencyStop(
      active, Audit(actor, active ? "emergency_stop.activate" : "emergency_stop.lift", "", "", "",
                    reason)));
  RefreshSnapshot();
  return absl::OkStatus();
}

absl::StatusOr<PinRecord> RolloutManager::SetPin(const std::string& label_key,
                                                 const std::string& label_value,
                                                 const std::string& channel,
                                                 const std::string& policy,
                                                 const std::string& reason, const Principal& actor,
                                                 const ApprovalClaim* approved) {
  RETURN_IF_ERROR(ValidateChannelName(channel));
  RETURN_IF_ERROR(ValidateLabels({{label_key, label_value}}));
  RETURN_IF_ERROR(ValidateReason(reason, false, "pin"));
  if (label_key.empty()) {
    return absl::InvalidArgumentError("pin needs a label, e.g. --label group=payments");
  }
  PinRecord pin;
  pin.label_key = label_key;
  pin.label_value = label_value;
  pin.channel = channel;
  ASSIGN_OR_RETURN(pin.policy, ParsePinPolicy(policy));
  RETURN_IF_ERROR(CheckPinAboveFloor(pin));
  const nlohmann::json evidence = {{"label", absl::StrCat(label_key, "=", label_value)},
                                   {"channel", channel},
                                   {"policy", PinPolicyText(pin.policy)}};
  AuditRecord audit = Audit(actor, "pin.set", "", "", "", reason, evidence.dump());
  if (approved != nullptr) {
    ApprovalDesk::Attach(*approved, audit);
  } else {
    ASSIGN_OR_RETURN(GoverningRule governing, approvals_.DefaultRule());
    if (governing.rule.enabled) {
      ASSIGN_OR_RETURN(int64_t newest, NewestCompleted(channel));
      if (std::vector<GatedStep> steps =
              StepsNeedingApproval(governing.rule, StepAsk::Pin(pin.policy, newest));
          !steps.empty()) {
        ApprovalAsk ask;
        ask.kind = ApprovalKind::kPin;
        ask.steps = std::move(steps);
        ask.summary = absl::StrCat("pin ", label_key, "=", label_value, " on ", channel, " to ",
                                   PinPolicyText(pin.policy), " (newest completed: v", newest, ")");
        ask.request = {{"label_key", label_key},
                       {"label_value", label_value},
                       {"channel", channel},
                       {"policy", PinPolicyText(pin.policy)},
                       {"reason", reason}};
        ask.reason = reason;
        ask.policy = governing.policy;
        ask.rule = governing.rule;
        return approvals_.Hold(ask, actor);
      }
    }
  }
  RETURN_IF_ERROR(store_.UpsertPin(pin, audit));
  RefreshSnapshot();
  return pin;
}

absl::Status RolloutManager::CheckPinAboveFloor(const PinRecord& pin) {
  if (!HoldsBack(pin.policy)) {
    return absl::OkStatus();  // "latest" follows the rollouts, which respect the floor
  }
  ASSIGN_OR_RETURN(std::optional<FloorRecord> floor, store_.GetFloor(pin.channel));
  if (!floor.has_value()) {
    return absl::OkStatus();
  }
  const std::string policy = PinPolicyText(pin.policy);
  if (pin.policy.kind == PinPolicy::Kind::kVersion && pin.policy.version < floor->min_version) {
    return absl::FailedPreconditionError(
        absl::StrCat("pin ", policy, " is below ", pin.channel, "'s release-signed floor v",
                     floor->min_version, "; agents refuse versions below it"));
  }
  ASSIGN_OR_RETURN(std::vector<ContentRecord> content, store_.ListContent(pin.channel));
  ChannelCatalog catalog;
  catalog.channel = pin.channel;
  for (const ContentRecord& c : content) {
    if (c.revoked) {
      catalog.revoked.push_back(c.version);
    } else if (c.completed) {
      catalog.completed.push_back(c.version);
    }
  }
  std::sort(catalog.completed.begin(), catalog.completed.end());
  std::sort(catalog.revoked.begin(), catalog.revoked.end());
  const int64_t target = PinnedVersion(catalog, pin.policy);
  if (target != 0 && target < floor->min_version) {
    return absl::FailedPreconditionError(
        absl::StrCat("pin ", policy, " holds agents at ", pin.channel, " v", target,
                     " today, below the channel's release-signed floor v", floor->min_version,
                     "; agents refuse versions below it"));
  }
  return absl::OkStatus();
}

absl::StatusOr<RolloutExplanation> RolloutManager::Explain(const std::string& id) {
  RolloutExplanation out;
  ASSIGN_OR_RETURN(out.view, Get(id));
  ASSIGN_OR_RETURN(out.decisions, store_.ListDecisions(id));
  ASSIGN_OR_RETURN(std::vector<AuditRecord> audit, store_.ListAudit(id, 1000));
  for (AuditRecord& a : audit) {
    if (a.actor == kControllerActor) {
      out.automatic_actions.push_back(std::move(a));
    }
  }
  return out;
}

absl::StatusOr<PolicyRecord> RolloutManager::SetPolicy(const std::string& name,
                                                       const std::string& policy_json,
                                                       const std::string& reason,
                                                       const Principal& actor,
                                                       const ApprovalClaim* approved) {
  RETURN_IF_ERROR(ValidateChannelName(name));
  RETURN_IF_ERROR(ValidateReason(reason, false, "policy set"));
  ASSIGN_OR_RETURN(RolloutPolicy policy, PolicyFromJson(policy_json));
  RETURN_IF_ERROR(CheckPolicyTimings(policy, report_gap_, report_gap_text_));
  policy.name = name;
  nlohmann::json body = PolicyToJson(policy);
  body.erase("name");
  body.erase("version");
  AuditRecord audit = Audit(actor, "policy.set", "", "", "", reason,
                            nlohmann::json{{"policy", name}, {"body", body}}.dump());
  if (approved != nullptr) {
    ApprovalDesk::Attach(*approved, audit);
  } else {
    ASSIGN_OR_RETURN(GoverningRule governing, approvals_.PolicyChangeRule(name));
    if (std::vector<GatedStep> steps = StepsNeedingApproval(governing.rule, StepAsk::Policy());
        !steps.empty()) {
      ApprovalAsk ask;
      ask.kind = ApprovalKind::kPolicy;
      ask.steps = std::move(steps);
      ask.summary = absl::StrCat("set policy ", name, " to ", body.dump());
      if (ask.summary.size() > 512) {
        ask.summary = absl::StrCat(ask.summary.substr(0, 509), "...");
      }
      ask.request = {{"name", name}, {"policy_json", policy_json}, {"reason", reason}};
      ask.reason = reason;
      ask.policy = governing.policy;
      ask.rule = governing.rule;
      return approvals_.Hold(ask, actor);
    }
  }
  return store_.PutPolicy(name, body.dump(), audit);
}

absl::StatusOr<int64_t> RolloutManager::NewestCompleted(const std::string& channel) {
  ASSIGN_OR_RETURN(std::vector<ContentRecord> content, store_.ListContent(channel));
  int64_t newest = 0;
  for (const ContentRecord& c : content) {
    if (c.completed && !c.revoked) {
      newest = std::max(newest, c.version);
    }
  }
  return newest;
}

absl::Status RolloutManager::ReplayRolloutAction(const ApprovalRecord& request,
                                                 const Principal& asker,
                                                 const ApprovalClaim& claim) {
  const nlohmann::json r = nlohmann::json::parse(request.request_json, nullptr, false);
  if (!r.is_object() || !r.value("rollout_id", nlohmann::json()).is_string() ||
      !r.value("action", nlohmann::json()).is_string() ||
      !r.value("reason", nlohmann::json()).is_string() ||
      !r.value("expected_revision", nlohmann::json()).is_number_integer() ||
      !r.value("force", nlohmann::json()).is_boolean()) {
    return absl::InternalError(absl::StrCat("stored request ", request.id, " cannot be read"));
  }
  const std::string id = r["rollout_id"].get<std::string>();
  const std::string action_name = r["action"].get<std::string>();
  const int64_t revision = r["expected_revision"].get<int64_t>();
  std::optional<RolloutAction> action;
  for (RolloutAction a : {RolloutAction::kPromote, RolloutAction::kHalt, RolloutAction::kResume,
                          RolloutAction::kRollback}) {
    if (RolloutActionName(a) == action_name) {
      action = a;
    }
  }
  if (!action.has_value()) {
    return absl::InternalError(
        absl::StrCat("stored request ", request.id, " names unknown action ", action_name));
  }
  ASSIGN_OR_RETURN(RolloutRecord now, store_.GetRollout(id));
  if (now.revision != revision) {
    return absl::FailedPreconditionError(absl::StrCat(
        "rollout ", id, " moved since the request: it is ", RolloutStateName(now.position.state),
        " at revision ", now.revision, ", asked at revision ", revision, "; ask again"));
  }
  return Act(id, *action, r["reason"].get<std::string>(), revision, r["force"].get<bool>(), asker,
             &claim)
      .status();
}

void RolloutManager::RegisterExecutors() {
  approvals_.SetExecutor(
      ApprovalKind::kRolloutAction,
      [this](const ApprovalRecord& request, const Principal& asker, const ApprovalClaim& claim) {
        return ReplayRolloutAction(request, asker, claim);
      });
  approvals_.SetExecutor(
      ApprovalKind::kPin,
      [this](const ApprovalRecord& request, const Principal& asker,
             const ApprovalClaim& claim) -> absl::Status {
        const nlohmann::json r = nlohmann::json::parse(request.request_json, nullptr, false);
        for (const char* key : {"label_key", "label_value", "channel", "policy", "reason"}) {
          if (!r.is_object() || !r.value(key, nlohmann::json()).is_string()) {
            return absl::InternalError(
                absl::StrCat("stored request ", request.id, " cannot be read"));
          }
        }
        return SetPin(r["label_key"], r["label_value"], r["channel"], r["policy"], r["reason"],
                      asker, &claim)
            .status();
      });
  approvals_.SetExecutor(
      ApprovalKind::kPolicy,
      [this](const ApprovalRecord& request, const Principal& asker,
             const ApprovalClaim& claim) -> absl::Status {
        const nlohmann::json r = nlohmann::json::parse(request.request_json, nullptr, false);
        for (const char* key : {"name", "policy_json", "reason"}) {
          if (!r.is_object() || !r.value(key, nlohmann::json()).is_string()) {
            return absl::InternalError(
                absl::StrCat("stored request ", request.id, " cannot be read"));
          }
        }
        return SetPolicy(r["name"], r["policy_json"], r["reason"], asker, &claim).status();
      });
}

absl::StatusOr<PolicyRecord> RolloutManager::GetPolicy(const std::string& name, int64_t version) {
  RETURN_IF_ERROR(ValidateChannelName(name));
  if (version < 0) {
    return absl::InvalidArgumentError("policy version must be >= 0 (0 means the newest)");
  }
  return store_.GetPolicy(name, version);
}

absl::Status RolloutManager::EnsureDefaultPolicy() {
  absl::StatusOr<PolicyRecord> existing = store_.GetPolicy("default", 0);
  if (existing.ok() || !absl::IsNotFound(existing.status())) {
    return existing.status();
  }
  nlohmann::json body = PolicyToJson(DefaultRolloutPolicy());
  body.erase("name");
  body.erase("version");
  return store_
      .PutPolicy("default", body.dump(),
                 Audit(Principal{"ringwarden-server", Role::kAdmin}, "policy.set", "", "", "",
                       "built-in default policy"))
      .status();
}

}  // namespace ringwarden

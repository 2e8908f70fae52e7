#include "server/admin_service.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"
#include "server/grpc_metadata.h"
#include "server/request_limits.h"

namespace ringwarden {
namespace {

constexpr int kMaxListLimit = 1000;

int64_t Unix(absl::Time t) { return absl::ToUnixSeconds(t); }

v1::RolloutState ToProto(RolloutState s) {
  switch (s) {
    case RolloutState::kPending:
      return v1::PENDING;
    case RolloutState::kCanary:
      return v1::CANARY;
    case RolloutState::kEarly:
      return v1::EARLY;
    case RolloutState::kBroad:
      return v1::BROAD;
    case RolloutState::kCompleted:
      return v1::COMPLETED;
    case RolloutState::kHalted:
      return v1::HALTED;
    case RolloutState::kRolledBack:
      return v1::ROLLED_BACK;
    case RolloutState::kCancelled:
      return v1::CANCELLED;
  }
  return v1::ROLLOUT_STATE_UNSPECIFIED;
}

void ToProto(const RolloutRecord& r, const std::vector<RingProgressRecord>& rings,
             v1::Rollout& out) {
  out.set_id(r.id);
  out.set_channel(r.channel);
  out.set_version(r.version);
  out.set_state(ToProto(r.position.state));
  if (r.position.halted_from.has_value()) {
    out.set_halted_from(ToProto(*r.position.halted_from));
  }
  out.set_previous_version(r.previous_version);
  out.set_created_unix(Unix(r.created_at));
  out.set_updated_unix(Unix(r.updated_at));
  out.set_created_by(r.created_by);
  out.set_revision(r.revision);
  out.set_policy_name(r.policy_name);
  out.set_policy_version(r.policy_version);
  out.set_broad_wave(r.broad_wave);
  out.set_broad_fraction(r.broad_fraction);
  for (const RingProgressRecord& p : rings) {
    v1::RingProgress* rp = out.add_rings();
    rp->set_ring(std::string(RingName(p.ring)));
    rp->set_targeted(p.targeted);
    rp->set_applied(p.applied);
    rp->set_healthy(p.healthy);
    rp->set_failed(p.failed);
  }
}

void ToProto(const RolloutView& view, v1::Rollout& out) {
  ToProto(view.rollout, view.rings, out);
  const std::optional<Ring> ring = StageRing(view.rollout.position.state);
  if (!ring.has_value()) {
    return;
  }
  const ExposurePlan& p = view.exposure;
  v1::Exposure* e = out.mutable_exposure();
  e->set_enabled(p.enabled);
  e->set_ring(std::string(RingName(*ring)));
  e->set_share_hosts(p.cap);
  e->set_admitted(p.admitted);
  e->set_proven(p.proven);
  e->set_unproven(p.unproven);
  e->set_failed(p.failed);
  e->set_frozen(p.frozen);
  e->set_complete(p.complete);
  e->set_next_step(p.next_step);
  e->set_next_step_unix(p.next_step_at.has_value() ? absl::ToUnixSeconds(*p.next_step_at) : 0);
  e->set_text(ExposureText(p));
}

void ToProto(const ContentRecord& c, v1::ContentInfo& out) {
  out.set_channel(c.channel);
  out.set_version(c.version);
  out.set_sha256(c.sha256);
  out.set_size(c.size);
  for (const std::string& k : c.key_ids) {
    out.add_key_ids(k);
  }
  out.set_uploaded_unix(Unix(c.uploaded_at));
  out.set_uploaded_by(c.uploaded_by);
  out.set_revoked(c.revoked);
  out.set_description(c.description);
}

void ToProto(const AuditRecord& a, v1::AuditEntry& e) {
  e.set_id(a.id);
  e.set_at_unix_ms(absl::ToUnixMillis(a.at));
  e.set_actor(a.actor);
  e.set_action(a.action);
  e.set_rollout_id(a.rollout_id);
  e.set_from_state(a.from_state);
  e.set_to_state(a.to_state);
  e.set_reason(a.reason);
  e.set_evidence_json(a.evidence_json);
  e.set_seq(a.seq);
  e.set_prev_hash(a.prev_hash);
  e.set_entry_hash(a.entry_hash);
  e.set_at_unix_micros(absl::ToUnixMicros(a.at));
}

void ToProto(const PolicyRecord& p, v1::Policy& out) {
  out.set_name(p.name);
  out.set_version(p.version);
  out.set_policy_json(p.body_json);
  out.set_created_by(p.created_by);
  out.set_created_unix(Unix(p.created_at));
}

void ToProto(const PinRecord& p, v1::Pin& out) {
  out.set_label_key(p.label_key);
  out.set_label_value(p.label_value);
  out.set_channel(p.channel);
  out.set_policy(PinPolicyText(p.policy));
}

void ToProto(const RootRecord& r, v1::TrustMetadata& out) {
  out.set_kind("root");
  out.set_version(r.version);
  for (const std::string& k : r.key_ids) {
    out.add_key_ids(k);
  }
  out.set_expires_unix(Unix(r.expires));
  out.set_envelope(r.envelope_json);
}

void ToProto(const FloorRecord& f, v1::TrustMetadata& out) {
  out.set_kind("floor");
  out.set_version(f.min_version);
  out.set_channel(f.channel);
  for (const std::string& k : f.key_ids) {
    out.add_key_ids(k);
  }
  out.set_envelope(f.envelope_json);
}

void ToProto(const ApprovalRecord& a, absl::Time now, v1::ApprovalRequest& out) {
  out.set_id(a.id);
  out.set_kind(std::string(ApprovalKindName(a.kind)));
  for (GatedStep s : a.steps) {
    out.add_steps(std::string(GatedStepName(s)));
  }
  out.set_summary(a.summary);
  out.set_requested_by(a.requested_by);
  out.set_needed_role(a.needed_role);
  out.set_reason(a.reason);
  out.set_state(std::string(ApprovalStateName(EffectiveApprovalState(a.state, a.expires_at, now))));
  out.set_requested_unix(Unix(a.requested_at));
  out.set_expires_unix(Unix(a.expires_at));
  out.set_decided_by(a.decided_by);
  out.set_decided_unix(a.decided_at.has_value() ? Unix(*a.decided_at) : 0);
  out.set_decision_reason(a.decision_reason);
  out.set_rollout_id(a.rollout_id);
  out.set_policy(a.policy);
  out.set_request_json(a.request_json);
}

absl::StatusOr<int> Limit(int requested, int fallback) {
  if (requested < 0 || requested > kMaxListLimit) {
    return absl::InvalidArgumentError(absl::StrCat("limit must be between 0 and ", kMaxListLimit));
  }
  return requested == 0 ? fallback : requested;
}

}  // namespace

void AgentToProto(const AgentRecord& a, v1::AgentInfo& out) {
  out.set_agent_id(a.agent_id);
  out.set_ring(std::string(RingName(a.ring)));
  out.mutable_labels()->insert(a.labels.begin(), a.labels.end());
  for (const auto& [channel, version] : a.versions) {
    v1::ChannelVersionInfo* v = out.add_versions();
    v->set_channel(channel);
    v->set_version(version);
  }
  out.set_enrolled_unix(Unix(a.enrolled_at));
  out.set_last_seen_unix(a.last_seen_at.has_value() ? Unix(*a.last_seen_at) : 0);
  out.set_hostname(a.hostname);
  out.mutable_reported_labels()->insert(a.reported_labels.begin(), a.reported_labels.end());
  out.set_revoked_unix(a.revoked_at.has_value() ? Unix(*a.revoked_at) : 0);
  out.set_enrolled_with(a.enrolled_with);
}

AdminServiceImpl::AdminServiceImpl(RolloutManager& manager, TrustKeeper& trust, Store& store,
                                   const AdminAuthenticator& auth, AdminTokens& tokens,
                                   WorkQueue& queue, Metrics& metrics, const Clock& clock,
                                   AgentRegistry& agents)
    : manager_(manager),
      trust_(trust),
      store_(store),
      auth_(auth),
      tokens_(tokens),
      queue_(queue),
      metrics_(metrics),
      clock_(clock),
      agents_(agents) {
  manager_.approvals().SetExecutor(
      ApprovalKind::kFloor,
      [this](const ApprovalRecord& request, const Principal& asker, const ApprovalClaim& claim) {
        return ReplayFloor(request, asker, claim);
      });
}

absl::Status AdminServiceImpl::GateFloor(const FloorRecord& floor, const std::string& envelope_json,
                                         const std::string& reason, const Principal& actor) {
  ASSIGN_OR_RETURN(GoverningRule governing, manager_.approvals().DefaultRule());
  std::vector<GatedStep> steps = StepsNeedingApproval(governing.rule, StepAsk::Floor());
  if (steps.empty()) {
    return absl::OkStatus();
  }
  ApprovalAsk ask;
  ask.kind = ApprovalKind::kFloor;
  ask.steps = std::move(steps);
  ask.summary = absl::StrCat("raise the floor of ", floor.channel, " to v", floor.min_version);
  ask.request = {{"envelope", envelope_json}, {"reason", reason}};
  ask.reason = reason;
  ask.policy = governing.policy;
  ask.rule = governing.rule;
  return manager_.approvals().Hold(ask, actor);
}

absl::Status AdminServiceImpl::ReplayFloor(const ApprovalRecord& request, const Principal& asker,
                                           const ApprovalClaim& claim) {
  const nlohmann::json r = nlohmann::json::parse(request.request_json, nullptr, false);
  if (!r.is_object() || !r.value("envelope", nlohmann::json()).is_string() ||
      !r.value("reason", nlohmann::json()).is_string()) {
    return absl::InternalError(absl::StrCat("stored request ", request.id, " cannot be read"));
  }
  return trust_
      .UploadFloor(r["envelope"].get<std::string>(), r["reason"].get<std::string>(), asker,
                   [&claim](const FloorRecord&, AuditRecord& audit) {
                     ApprovalDesk::Attach(claim, audit);
                     return absl::OkStatus();
                   })
      .status();
}

grpc::ServerUnaryReactor* AdminServiceImpl::Run(
    grpc::CallbackServerContext* ctx, const google::protobuf::MessageLite& req, const char* method,
    Role needed, std::function<absl::Status(const Principal&)> work) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const absl::Time start = clock_.Now();
  auto finish = [this, reactor, method, start](const absl::Status& status) {
    metrics_.ObserveRpc(method, status.code(), absl::ToDoubleSeconds(clock_.Now() - start));
    reactor->Finish(ToGrpcStatus(status));
  };
  if (absl::Status size = CheckRequestSize(method, req); !size.ok()) {
    metrics_.requests_refused(RefusalReason::kOversized).Increment();
    finish(size);
    return reactor;
  }
  // Authorization reads the database, so it runs on the queue too.
  const bool queued = queue_.Submit(
      [this, finish, work = std::move(work), needed,
       header = std::string(MetadataValue(*ctx, "authorization"))] {
        absl::StatusOr<Principal> principal = auth_.Authorize(header, needed);
        finish(principal.ok() ? work(*principal) : principal.status());
      },
      [this, finish, method] {
        metrics_.requests_refused(RefusalReason::kQueueWait).Increment();
        finish(absl::UnavailableError(
            absl::StrCat(method, " waited too long for a database worker; retry")));
      });
  if (!queued) {
    finish(absl::ResourceExhaustedError("server is busy; retry in a few seconds"));
  }
  metrics_.admin_queue_depth().Set(static_cast<double>(queue_.Depth()));
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::UploadContent(grpc::CallbackServerContext* ctx,
                                                          const v1::UploadContentRequest* req,
                                                          v1::UploadContentResponse* resp) {
  return Run(ctx, *req, "UploadContent", Role::kReleaser, [this, req, resp](const Principal& p) {
    if (req->envelope().size() > kMaxEnvelopeJsonBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("envelope is larger than ", kMaxEnvelopeJsonBytes, " bytes"));
    }
    ASSIGN_OR_RETURN(ContentRecord c, manager_.UploadContent(req->envelope(), req->payload(), p));
    ToProto(c, *resp->mutable_content());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListContent(grpc::CallbackServerContext* ctx,
                                                        const v1::ListContentRequest* req,
                                                        v1::ListContentResponse* resp) {
  return Run(ctx, *req, "ListContent", Role::kViewer, [this, req, resp](const Principal&) {
    if (!req->channel().empty()) {
      RETURN_IF_ERROR(ValidateChannelName(req->channel()));
    }
    ASSIGN_OR_RETURN(std::vector<ContentRecord> content, store_.ListContent(req->channel()));
    for (const ContentRecord& c : content) {
      ToProto(c, *resp->add_content());
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::StartRollout(grpc::CallbackServerContext* ctx,
                                                         const v1::StartRolloutRequest* req,
                                                         v1::Rollout* resp) {
  return Run(ctx, *req, "StartRollout", Role::kReleaser, [this, req, resp](const Principal& p) {
    ASSIGN_OR_RETURN(RolloutView view,
                     manager_.StartRollout(req->channel(), req->version(), req->hold(),
                                           req->supersede(), req->reason(), req->policy(), p));
    ToProto(view, *resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetRollout(grpc::CallbackServerContext* ctx,
                                                       const v1::GetRolloutRequest* req,
                                                       v1::Rollout* resp) {
  return Run(ctx, *req, "GetRollout", Role::kViewer, [this, req, resp](const Principal&) {
    ASSIGN_OR_RETURN(RolloutView view, manager_.Get(req->id()));
    ToProto(view, *resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListRollouts(grpc::CallbackServerContext* ctx,
                                                         const v1::ListRolloutsRequest* req,
                                                         v1::ListRolloutsResponse* resp) {
  return Run(ctx, *req, "ListRollouts", Role::kViewer, [this, req, resp](const Principal&) {
    if (!req->channel().empty()) {
      RETURN_IF_ERROR(ValidateChannelName(req->channel()));
    }
    ASSIGN_OR_RETURN(int limit, Limit(req->limit(), 100));
    ASSIGN_OR_RETURN(std::vector<RolloutRecord> rollouts,
                     store_.ListRollouts(req->channel(), req->active_only(), limit));
    for (const RolloutRecord& r : rollouts) {
      ToProto(r, {}, *resp->add_rollouts());
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::Act(grpc::CallbackServerContext* ctx,
                                                const char* method, RolloutAction action,
                                                const v1::RolloutActionRequest* req,
                                                v1::Rollout* resp) {
  return Run(ctx, *req, method, Role::kReleaser, [this, action, req, resp](const Principal& p) {
    ASSIGN_OR_RETURN(RolloutView view, manager_.Act(req->id(), action, req->reason(),
                                                    req->expected_revision(), req->force(), p));
    ToProto(view, *resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::PromoteRollout(grpc::CallbackServerContext* ctx,
                                                           const v1::RolloutActionRequest* req,
                                                           v1::Rollout* resp) {
  return Act(ctx, "PromoteRollout", RolloutAction::kPromote, req, resp);
}

grpc::ServerUnaryReactor* AdminServiceImpl::HaltRollout(grpc::CallbackServerContext* ctx,
                                                        const v1::RolloutActionRequest* req,
                                                        v1::Rollout* resp) {
  return Act(ctx, "HaltRollout", RolloutAction::kHalt, req, resp);
}

grpc::ServerUnaryReactor* AdminServiceImpl::ResumeRollout(grpc::CallbackServerContext* ctx,
                                                          const v1::RolloutActionRequest* req,
                                                          v1::Rollout* resp) {
  return Act(ctx, "ResumeRollout", RolloutAction::kResume, req, resp);
}

grpc::ServerUnaryReactor* AdminServiceImpl::RollbackRollout(grpc::CallbackServerContext* ctx,
                                                            const v1::RolloutActionRequest* req,
                                                            v1::Rollout* resp) {
  return Act(ctx, "RollbackRollout", RolloutAction::kRollback, req, resp);
}

grpc::ServerUnaryReactor* AdminServiceImpl::EmergencyStop(grpc::CallbackServerContext* ctx,
                                                          const v1::EmergencyStopRequest* req,
                                                          v1::EmergencyStopResponse* resp) {
  return Run(ctx, *req, "EmergencyStop", Role::kAdmin, [this, req, resp](const Principal& p) {
    RETURN_IF_ERROR(manager_.SetEmergencyStop(!req->lift(), req->reason(), p));
    resp->set_active(!req->lift());
    metrics_.emergency_stop_active().Set(req->lift() ? 0 : 1);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::SetPin(grpc::CallbackServerContext* ctx,
                                                   const v1::SetPinRequest* req, v1::Pin* resp) {
  return Run(ctx, *req, "SetPin", Role::kReleaser, [this, req, resp](const Principal& p) {
    ASSIGN_OR_RETURN(PinRecord pin,
                     manager_.SetPin(req->label_key(), req->label_value(), req->channel(),
                                     req->policy(), req->reason(), p));
    ToProto(pin, *resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListPins(grpc::CallbackServerContext* ctx,
                                                     const v1::ListPinsRequest* req,
                                                     v1::ListPinsResponse* resp) {
  return Run(ctx, *req, "ListPins", Role::kViewer, [this, resp](const Principal&) {
    ASSIGN_OR_RETURN(std::vector<PinRecord> pins, store_.ListPins());
    for (const PinRecord& p : pins) {
      ToProto(p, *resp->add_pins());
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListAgents(grpc::CallbackServerContext* ctx,
                                                       const v1::ListAgentsRequest* req,
                                                       v1::ListAgentsResponse* resp) {
  return Run(ctx, *req, "ListAgents", Role::kViewer, [this, req, resp](const Principal&) {
    std::optional<Ring> ring;
    if (!req->ring().empty()) {
      ASSIGN_OR_RETURN(ring, ParseRing(req->ring()));
    }
    ASSIGN_OR_RETURN(int limit, Limit(req->limit(), 1000));
    ASSIGN_OR_RETURN(auto agents, store_.ListAgents(ring, limit));
    for (const AgentRecord& a : agents.first) {
      AgentToProto(a, *resp->add_agents());
    }
    resp->set_total(agents.second);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListAuditLog(grpc::CallbackServerContext* ctx,
                                                         const v1::ListAuditLogRequest* req,
                                                         v1::ListAuditLogResponse* resp) {
  return Run(ctx, *req, "ListAuditLog", Role::kViewer, [this, req, resp](const Principal&) {
    ASSIGN_OR_RETURN(int limit, Limit(req->limit(), 100));
    if (req->rollout_id().size() > 64) {
      return absl::InvalidArgumentError("rollout id must be at most 64 characters");
    }
    if (req->after_seq() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("after_seq ", req->after_seq(), " must not be negative"));
    }
    if (req->after_seq() > 0 && !req->oldest_first()) {
      return absl::InvalidArgumentError("after_seq pages oldest first; set oldest_first to use it");
    }
    ASSIGN_OR_RETURN(std::vector<AuditRecord> entries,
                     req->oldest_first()
                         ? store_.ListAuditOldestFirst(req->rollout_id(), req->after_seq(), limit)
                         : store_.ListAudit(req->rollout_id(), limit));
    for (const AuditRecord& a : entries) {
      ToProto(a, *resp->add_entries());
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ExplainRollout(grpc::CallbackServerContext* ctx,
                                                           const v1::GetRolloutRequest* req,
                                                           v1::ExplainRolloutResponse* resp) {
  return Run(ctx, *req, "ExplainRollout", Role::kViewer, [this, req, resp](const Principal&) {
    ASSIGN_OR_RETURN(RolloutExplanation e, manager_.Explain(req->id()));
    ToProto(e.view, *resp->mutable_rollout());
    for (const DecisionRecord& d : e.decisions) {
      v1::RingDecision* out = resp->add_decisions();
      out->set_ring(std::string(RingName(d.ring)));
      out->set_kind(d.kind);
      out->set_reason(d.reason);
      out->set_gate_passed(d.gate_passed);
      out->set_summary(d.summary);
      out->set_evidence_json(d.evidence_json);
      out->set_evaluated_unix_ms(absl::ToUnixMillis(d.evaluated_at));
    }
    for (const AuditRecord& a : e.automatic_actions) {
      ToProto(a, *resp->add_automatic_actions());
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::SetPolicy(grpc::CallbackServerContext* ctx,
                                                      const v1::SetPolicyRequest* req,
                                                      v1::Policy* resp) {
  return Run(ctx, *req, "SetPolicy", Role::kReleaser, [this, req, resp](const Principal& p) {
    ASSIGN_OR_RETURN(PolicyRecord policy,
                     manager_.SetPolicy(req->name(), req->policy_json(), req->reason(), p));
    ToProto(policy, *resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetPolicy(grpc::CallbackServerContext* ctx,
                                                      const v1::GetPolicyRequest* req,
                                                      v1::Policy* resp) {
  return Run(ctx, *req, "GetPolicy", Role::kViewer, [this, req, resp](const Principal&) {
    ASSIGN_OR_RETURN(
        PolicyRecord policy,
        manager_.GetPolicy(req->name().empty() ? "default" : req->name(), req->version()));
    ToProto(policy, *resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::UploadRoot(grpc::CallbackServerContext* ctx,
                                                       const v1::UploadTrustMetadataRequest* req,
                                                       v1::TrustMetadata* resp) {
  return Run(ctx, *req, "UploadRoot", Role::kAdmin, [this, req, resp](const Principal& p) {
    ASSIGN_OR_RETURN(RootRecord root, trust_.UploadRoot(req->envelope(), req->reason(), p));
    metrics_.server_key_trusted().Set(trust_.ServerKeyTrusted() ? 1 : 0);
    ToProto(root, *resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::UploadFloor(grpc::CallbackServerContext* ctx,
                                                        const v1::UploadTrustMetadataRequest* req,
                                                        v1::TrustMetadata* resp) {
  return Run(ctx, *req, "UploadFloor", Role::kReleaser, [this, req, resp](const Principal& p) {
    ASSIGN_OR_RETURN(FloorRecord floor,
                     trust_.UploadFloor(req->envelope(), req->reason(), p,
                                        [this, req, &p](const FloorRecord& f, AuditRecord&) {
                                          return GateFloor(f, req->envelope(), req->reason(), p);
                                        }));
    ToProto(floor, *resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListTrust(grpc::CallbackServerContext* ctx,
                                                      const v1::ListTrustRequest* req,
                                                      v1::ListTrustResponse* resp) {
  return Run(ctx, *req, "ListTrust", Role::kViewer, [this, resp](const Principal&) {
    ASSIGN_OR_RETURN(std::vector<RootRecord> roots, store_.ListRoots());
    ASSIGN_OR_RETURN(std::vector<FloorRecord> floors, store_.ListFloors());
    for (const RootRecord& r : roots) {
      ToProto(r, *resp->add_roots());
    }
    for (const FloorRecord& f : floors) {
      ToProto(f, *resp->add_floors());
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListApprovals(grpc::CallbackServerContext* ctx,
                                                          const v1::ListApprovalsRequest* req,
                                                          v1::ListApprovalsResponse* resp) {
  return Run(ctx, *req, "ListApprovals", Role::kViewer, [this, req, resp](const Principal&) {
    ASSIGN_OR_RETURN(int limit, Limit(req->limit(), 100));
    ASSIGN_OR_RETURN(std::vector<ApprovalRecord> requests,
                     manager_.approvals().List(!req->include_decided(), limit));
    const absl::Time now = clock_.Now();
    for (const ApprovalRecord& a : requests) {
      ToProto(a, now, *resp->add_requests());
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::Decide(grpc::CallbackServerContext* ctx,
                                                   const char* method, bool approve,
                                                   const v1::DecideApprovalRequest* req,
                                                   v1::ApprovalRequest* resp) {
  return Run(ctx, *req, method, Role::kReleaser, [this, approve, req, resp](const Principal& p) {
    ASSIGN_OR_RETURN(ApprovalRecord a,
                     approve ? manager_.approvals().Approve(req->id(), req->reason(), p)
                             : manager_.approvals().Reject(req->id(), req->reason(), p));
    ToProto(a, clock_.Now(), *resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ApproveRequest(grpc::CallbackServerContext* ctx,
                                                           const v1::DecideApprovalRequest* req,
                                                           v1::ApprovalRequest* resp) {
  return Decide(ctx, "ApproveRequest", /*approve=*/true, req, resp);
}

grpc::ServerUnaryReactor* AdminServiceImpl::RejectRequest(grpc::CallbackServerContext* ctx,
                                                          const v1::DecideApprovalRequest* req,
                                                          v1::ApprovalRequest* resp) {
  return Decide(ctx, "RejectRequest", /*approve=*/false, req, resp);
}

}  // namespace ringwarden

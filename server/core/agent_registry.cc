#include "server/core/agent_registry.h"

#include <iostream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/names.h"
#include "common/secret_token.h"
#include "common/status_macros.h"
#include "server/domain/enrollment.h"

namespace ringwarden {
namespace {

constexpr absl::string_view kEnrollmentTokenPrefix = "rwe";
constexpr size_t kMaxReasonBytes = 1024;

AuditRecord AgentAudit(const Principal& actor, std::string action, const std::string& reason,
                       nlohmann::json evidence) {
  AuditRecord a;
  a.actor = actor.name;
  a.action = std::move(action);
  a.reason = SanitizeText(reason, kMaxReasonBytes);
  a.evidence_json = evidence.dump();
  return a;
}

}  // namespace

void AgentRegistry::RefreshSnapshot() {
  if (absl::Status status = snapshots_.Refresh(); !status.ok()) {
    // The change is committed; the periodic refresh will pick it up.
    std::cerr << "snapshot refresh after an agent change failed: " << status << std::endl;
  }
}

absl::StatusOr<CreatedEnrollmentToken> AgentRegistry::CreateToken(const NewEnrollmentToken& request,
                                                                  const Principal& actor) {
  RETURN_IF_ERROR(ValidateNewEnrollmentToken(request.ttl, request.max_uses));
  RETURN_IF_ERROR(ValidateLabels(request.labels));
  if (request.description.size() > kMaxReasonBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("description is longer than ", kMaxReasonBytes, " bytes"));
  }
  const SecretToken secret = MakeSecretToken(kEnrollmentTokenPrefix);
  CreatedEnrollmentToken created;
  EnrollmentTokenRecord& r = created.record;
  r.id = secret.id;
  r.secret_sha256 = secret.secret_sha256;
  r.labels = request.labels;
  r.max_uses = request.max_uses;
  r.created_at = clock_.Now();
  r.created_by = actor.name;
  r.expires_at = r.created_at + request.ttl;
  r.description = SanitizeText(request.description, kMaxReasonBytes);
  RETURN_IF_ERROR(store_.CreateEnrollmentToken(
      r, AgentAudit(actor, "enroll_token.create", r.description,
                    {{"token", r.id},
                     {"labels", r.labels},
                     {"max_uses", r.max_uses},
                     {"expires_unix", absl::ToUnixSeconds(r.expires_at)}})));
  created.text = secret.text;
  return created;
}

absl::StatusOr<std::vector<EnrollmentTokenRecord>> AgentRegistry::ListTokens() {
  return store_.ListEnrollmentTokens();
}

absl::StatusOr<EnrollmentTokenRecord> AgentRegistry::RevokeToken(const std::string& id,
                                                                 const std::string& reason,
                                                                 const Principal& actor) {
  if (id.empty() || id.size() > 64) {
    return absl::InvalidArgumentError("enrollment token id must be 1-64 characters");
  }
  return store_.RevokeEnrollmentToken(
      id, AgentAudit(actor, "enroll_token.revoke", reason, {{"token", id}}));
}

absl::StatusOr<EnrolledAgent> AgentRegistry::Enroll(const Enrollment& request) {
  RETURN_IF_ERROR(ValidateAgentId(request.agent_id));
  RETURN_IF_ERROR(ValidateLabels(request.reported_labels));
  if (request.hostname.size() > 255) {
    return absl::InvalidArgumentError("hostname is longer than 255 characters");
  }
  absl::StatusOr<ParsedToken> token = ParseSecretToken(kEnrollmentTokenPrefix, request.token_text);
  if (!token.ok()) {
    return absl::PermissionDeniedError(absl::StrCat("enrollment_token: ", token.status().message(),
                                                    " (ringctl enroll-token create)"));
  }
  std::shared_ptr<const AssignmentSnapshot> snapshot = snapshots_.Current();
  if (snapshot == nullptr) {
    return absl::UnavailableError("server is starting; retry shortly");
  }
  EnrollmentRequest stored;
  stored.token_id = token->id;
  stored.presented_sha256 = token->secret_sha256;
  stored.agent_id = request.agent_id;
  stored.reported_labels = request.reported_labels;
  stored.hostname = SanitizeText(request.hostname, 255);
  stored.holds_credential = request.holds_credential;
  stored.now = clock_.Now();
  stored.ring_of = [&](const std::map<std::string, std::string>& labels) {
    return snapshot->RingOf(AgentIdentity{request.agent_id, labels});
  };
  ASSIGN_OR_RETURN(EnrolledAgent enrolled, store_.EnrollAgent(stored));
  if (!enrolled.labels.empty()) {
    RefreshSnapshot();  // its labels decide its first poll
  }
  return enrolled;
}

absl::StatusOr<AgentRecord> AgentRegistry::Label(const std::string& agent_id,
                                                 const std::map<std::string, std::string>& labels,
                                                 const std::string& reason,
                                                 const Principal& actor) {
  RETURN_IF_ERROR(ValidateAgentId(agent_id));
  RETURN_IF_ERROR(ValidateLabels(labels));
  std::shared_ptr<const AssignmentSnapshot> snapshot = snapshots_.Current();
  if (snapshot == nullptr) {
    return absl::UnavailableError("server is starting; retry shortly");
  }
  const Ring ring = snapshot->RingOf(AgentIdentity{agent_id, labels});
  ASSIGN_OR_RETURN(AgentRecord agent,
                   store_.LabelAgent(agent_id, labels, ring,
                                     AgentAudit(actor, "agent.label", reason,
                                                {{"agent", agent_id},
                                                 {"labels", labels},
                                                 {"ring", std::string(RingName(ring))}})));
  RefreshSnapshot();
  return agent;
}

absl::StatusOr<AgentRecord> AgentRegistry::Revoke(const std::string& agent_id,
                                                  const std::string& reason,
                                                  const Principal& actor) {
  RETURN_IF_ERROR(ValidateAgentId(agent_id));
  ASSIGN_OR_RETURN(AgentRecord agent,
                   store_.RevokeAgent(
                       agent_id, AgentAudit(actor, "agent.revoke", reason, {{"agent", agent_id}})));
  RefreshSnapshot();
  return agent;
}

absl::StatusOr<AgentRecord> AgentRegistry::Reset(const std::string& agent_id,
                                                 const std::string& reason,
                                                 const Principal& actor) {
  RETURN_IF_ERROR(ValidateAgentId(agent_id));
  ASSIGN_OR_RETURN(
      AgentRecord agent,
      store_.ResetAgent(agent_id, AgentAudit(actor, "agent.reset", reason, {{"agent", agent_id}})));
  RefreshSnapshot();
  return agent;
}

}  // namespace ringwarden

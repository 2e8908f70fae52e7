// AdminService: enrollment tokens and agent identity. The handlers validate,
// call the AgentRegistry and map its status; see admin_service.cc for Run.
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/admin_service.h"

namespace ringwarden {
namespace {

void TokenToProto(const EnrollmentTokenRecord& t, v1::EnrollmentToken& out) {
  out.set_id(t.id);
  out.mutable_labels()->insert(t.labels.begin(), t.labels.end());
  out.set_max_uses(t.max_uses);
  out.set_uses(t.uses);
  out.set_created_unix(absl::ToUnixSeconds(t.created_at));
  out.set_created_by(t.created_by);
  out.set_expires_unix(absl::ToUnixSeconds(t.expires_at));
  out.set_revoked_unix(t.revoked_at.has_value() ? absl::ToUnixSeconds(*t.revoked_at) : 0);
  out.set_description(t.description);
}

std::map<std::string, std::string> Labels(
    const google::protobuf::Map<std::string, std::string>& in) {
  return std::map<std::string, std::string>(in.begin(), in.end());
}

}  // namespace

grpc::ServerUnaryReactor* AdminServiceImpl::CreateEnrollmentToken(
    grpc::CallbackServerContext* ctx, const v1::CreateEnrollmentTokenRequest* req,
    v1::CreateEnrollmentTokenResponse* resp) {
  return Run(
      ctx, *req, "CreateEnrollmentToken", Role::kAdmin, [this, req, resp](const Principal& p) {
        if (req->ttl_seconds() <= 0 || req->ttl_seconds() > int64_t{365} * 24 * 3600) {
          return absl::InvalidArgumentError(absl::StrCat(
              "ttl_seconds must be between ", absl::ToInt64Seconds(kMinEnrollmentTokenTtl), " and ",
              absl::ToInt64Seconds(kMaxEnrollmentTokenTtl), "; got ", req->ttl_seconds()));
        }
        ASSIGN_OR_RETURN(CreatedEnrollmentToken created,
                         agents_.CreateToken(
                             NewEnrollmentToken{absl::Seconds(req->ttl_seconds()), req->max_uses(),
                                                Labels(req->labels()), req->description()},
                             p));
        TokenToProto(created.record, *resp->mutable_token());
        resp->set_secret_token(created.text);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListEnrollmentTokens(
    grpc::CallbackServerContext* ctx, const v1::ListEnrollmentTokensRequest* req,
    v1::ListEnrollmentTokensResponse* resp) {
  return Run(ctx, *req, "ListEnrollmentTokens", Role::kViewer, [this, resp](const Principal&) {
    ASSIGN_OR_RETURN(std::vector<EnrollmentTokenRecord> tokens, agents_.ListTokens());
    for (const EnrollmentTokenRecord& t : tokens) {
      TokenToProto(t, *resp->add_tokens());
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::RevokeEnrollmentToken(
    grpc::CallbackServerContext* ctx, const v1::RevokeEnrollmentTokenRequest* req,
    v1::EnrollmentToken* resp) {
  return Run(ctx, *req, "RevokeEnrollmentToken", Role::kAdmin,
             [this, req, resp](const Principal& p) {
               ASSIGN_OR_RETURN(EnrollmentTokenRecord token,
                                agents_.RevokeToken(req->id(), req->reason(), p));
               TokenToProto(token, *resp);
               return absl::OkStatus();
             });
}

grpc::ServerUnaryReactor* AdminServiceImpl::LabelAgent(grpc::CallbackServerContext* ctx,
                                                       const v1::LabelAgentRequest* req,
                                                       v1::AgentInfo* resp) {
  return Run(ctx, *req, "LabelAgent", Role::kAdmin, [this, req, resp](const Principal& p) {
    ASSIGN_OR_RETURN(AgentRecord agent,
                     agents_.Label(req->agent_id(), Labels(req->labels()), req->reason(), p));
    AgentToProto(agent, *resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::RevokeAgent(grpc::CallbackServerContext* ctx,
                                                        const v1::AgentActionRequest* req,
                                                        v1::AgentInfo* resp) {
  return Run(ctx, *req, "RevokeAgent", Role::kAdmin, [this, req, resp](const Principal& p) {
    ASSIGN_OR_RETURN(AgentRecord agent, agents_.Revoke(req->agent_id(), req->reason(), p));
    AgentToProto(agent, *resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ResetAgent(grpc::CallbackServerContext* ctx,
                                                       const v1::AgentActionRequest* req,
                                                       v1::AgentInfo* resp) {
  return Run(ctx, *req, "ResetAgent", Role::kAdmin, [this, req, resp](const Principal& p) {
    ASSIGN_OR_RETURN(AgentRecord agent, agents_.Reset(req->agent_id(), req->reason(), p));
    AgentToProto(agent, *resp);
    return absl::OkStatus();
  });
}

}  // namespace ringwarden

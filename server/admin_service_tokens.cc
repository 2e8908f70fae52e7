// AdminService's admin token calls: thin handlers over AdminTokens.
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/admin_service.h"

namespace ringwarden {
namespace {

void ToProto(const AdminTokenRecord& t, v1::AdminToken& out) {
  out.set_id(t.id);
  out.set_name(t.name);
  out.set_role(t.role);
  out.set_created_unix(absl::ToUnixSeconds(t.created_at));
  out.set_created_by(t.created_by);
  out.set_expires_unix(absl::ToUnixSeconds(t.expires_at));
  out.set_revoked_unix(t.revoked_at.has_value() ? absl::ToUnixSeconds(*t.revoked_at) : 0);
  out.set_revoked_by(t.revoked_by);
}

}  // namespace

grpc::ServerUnaryReactor* AdminServiceImpl::CreateAdminToken(grpc::CallbackServerContext* ctx,
                                                             const v1::CreateAdminTokenRequest* req,
                                                             v1::CreateAdminTokenResponse* resp) {
  return Run(ctx, *req, "CreateAdminToken", Role::kAdmin, [this, req, resp](const Principal& p) {
    ASSIGN_OR_RETURN(Role role, ParseRole(req->role().substr(0, 64)));
    if (req->ttl_seconds() <= 0 || req->ttl_seconds() > absl::ToInt64Seconds(kMaxAdminTokenTtl)) {
      return absl::InvalidArgumentError(
          absl::StrCat("ttl_seconds must be between ", absl::ToInt64Seconds(kMinAdminTokenTtl),
                       " (1h) and ", absl::ToInt64Seconds(kMaxAdminTokenTtl), " (365d)"));
    }
    ASSIGN_OR_RETURN(
        IssuedAdminToken issued,
        tokens_.Create(req->name(), role, absl::Seconds(req->ttl_seconds()), req->reason(), p));
    ToProto(issued.record, *resp->mutable_token());
    resp->set_secret_token(issued.token);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListAdminTokens(grpc::CallbackServerContext* ctx,
                                                            const v1::ListAdminTokensRequest* req,
                                                            v1::ListAdminTokensResponse* resp) {
  return Run(ctx, *req, "ListAdminTokens", Role::kAdmin, [this, resp](const Principal&) {
    ASSIGN_OR_RETURN(std::vector<AdminTokenRecord> tokens, tokens_.List());
    for (const AdminTokenRecord& t : tokens) {
      ToProto(t, *resp->add_tokens());
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::RevokeAdminToken(grpc::CallbackServerContext* ctx,
                                                             const v1::RevokeAdminTokenRequest* req,
                                                             v1::AdminToken* resp) {
  return Run(ctx, *req, "RevokeAdminToken", Role::kAdmin, [this, req, resp](const Principal& p) {
    ASSIGN_OR_RETURN(AdminTokenRecord revoked,
                     tokens_.Revoke(req->id(), req->force(), req->reason(), p));
    ToProto(revoked, *resp);
    return absl::OkStatus();
  });
}

}  // namespace ringwarden

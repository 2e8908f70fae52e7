#include "server/agent_credentials.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/server_context.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "server/domain/enrollment.h"
#include "server/grpc_metadata.h"

namespace ringwarden {
namespace {

constexpr absl::string_view kBearer = "Bearer ";
constexpr absl::string_view kTokenPrefix = "rwa2.";
constexpr size_t kMaxTokenBytes = 1024;

std::string HmacSha256(absl::string_view key, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

}  // namespace

std::string IssueAgentToken(absl::string_view agent_id, absl::Time issued, absl::Time expires,
                            absl::string_view secret) {
  const std::string body = absl::WebSafeBase64Escape(nlohmann::json{
      {"id", agent_id},
      {"iat", absl::ToUnixSeconds(issued)},
      {"exp", absl::ToUnixSeconds(expires)}}.dump());
  return absl::StrCat(kTokenPrefix, body, ".", absl::WebSafeBase64Escape(HmacSha256(secret, body)));
}

absl::StatusOr<PresentedCredential> VerifyAgentToken(absl::string_view token,
                                                     absl::string_view secret, absl::Time now) {
  const auto invalid = absl::UnauthenticatedError("agent credential is not valid; enroll again");
  if (token.size() > kMaxTokenBytes || !absl::ConsumePrefix(&token, kTokenPrefix)) {
    return invalid;
  }
  const size_t dot = token.find('.');
  if (dot == absl::string_view::npos) {
    return invalid;
  }
  const absl::string_view body = token.substr(0, dot);
  std::string mac;
  const std::string want = HmacSha256(secret, body);
  if (!absl::WebSafeBase64Unescape(token.substr(dot + 1), &mac) || mac.size() != want.size() ||
      CRYPTO_memcmp(mac.data(), want.data(), want.size()) != 0) {
    return invalid;
  }
  std::string json;
  if (!absl::WebSafeBase64Unescape(body, &json)) {
    return invalid;
  }
  const nlohmann::json doc = nlohmann::json::parse(json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("id") || !doc["id"].is_string() ||
      !doc.contains("iat") || !doc["iat"].is_number_integer() || !doc.contains("exp") ||
      !doc["exp"].is_number_integer()) {
    return invalid;
  }
  const absl::Time expires = absl::FromUnixSeconds(doc["exp"].get<int64_t>());
  if (now >= expires) {
    return absl::UnauthenticatedError(absl::StrCat("agent credential expired at ",
                                                   absl::FormatTime(expires, absl::UTCTimeZone()),
                                                   "; enroll again"));
  }
  return PresentedCredential{doc["id"].get<std::string>(),
                             absl::FromUnixSeconds(doc["iat"].get<int64_t>())};
}

namespace {

// PeerCertificate reads the identity of a TLS peer whose certificate the
// handshake verified against --client-ca.
absl::StatusOr<std::optional<PresentedCredential>> PeerCertificate(
    const grpc::ServerContextBase& ctx) {
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) {
    return std::nullopt;
  }
  const std::vector<grpc::string_ref> pem =
      auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pem.size() != 1) {
    return absl::UnauthenticatedError("the client certificate cannot be read");
  }
  absl::StatusOr<CertificateInfo> info =
      InspectCertificate(absl::string_view(pem[0].data(), pem[0].size()));
  if (!info.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("the client certificate cannot be read: ", info.status().message()));
  }
  absl::StatusOr<std::string> agent_id = AgentIdFromSpiffeId(info->uri_san);
  if (!agent_id.ok()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "the client certificate is not an agent credential: ", agent_id.status().message()));
  }
  return PresentedCredential{*std::move(agent_id), info->not_before};
}

}  // namespace

AgentCredentials AgentCredentials::Tls(CertificateAuthority ca, absl::Duration ttl,
                                       const Clock& clock) {
  return AgentCredentials(std::move(ca), ttl, clock);
}

AgentCredentials AgentCredentials::Insecure(absl::Duration ttl, const Clock& clock) {
  return AgentCredentials(std::nullopt, ttl, clock);
}

absl::StatusOr<std::optional<PresentedCredential>> AgentCredentials::Presented(
    const grpc::ServerContextBase& ctx, const AssignmentSnapshot& snapshot) const {
  if (tls()) {
    return PeerCertificate(ctx);
  }
  const std::string authorization = MetadataValue(ctx, "authorization");
  absl::string_view header = authorization;
  if (header.empty()) {
    return std::nullopt;
  }
  if (!absl::ConsumePrefix(&header, kBearer)) {
    return absl::UnauthenticatedError(
        "agent credential must be sent as \"authorization: Bearer <agent_token>\"");
  }
  ASSIGN_OR_RETURN(PresentedCredential presented,
                   VerifyAgentToken(header, snapshot.agent_token_secret(), clock_->Now()));
  return presented;
}

absl::StatusOr<AgentIdentity> AgentCredentials::Authenticate(
    const grpc::ServerContextBase& ctx, const std::string& request_agent_id,
    const AssignmentSnapshot& snapshot) const {
  RETURN_IF_ERROR(ValidateAgentId(request_agent_id));
  ASSIGN_OR_RETURN(std::optional<PresentedCredential> presented, Presented(ctx, snapshot));
  if (!presented.has_value()) {
    return absl::UnauthenticatedError(
        tls() ? "this call needs the agent's client certificate; enroll first"
              : "missing agent credential: send \"authorization: Bearer <agent_token>\"");
  }
  if (presented->agent_id != request_agent_id) {
    return absl::PermissionDeniedError(absl::StrCat("the credential belongs to agent ",
                                                    presented->agent_id,
                                                    "; it cannot act as agent ", request_agent_id));
  }
  RETURN_IF_ERROR(AdmitCredential(snapshot.Gate(presented->agent_id), presented->agent_id,
                                  presented->issued_at));
  return snapshot.Identity(presented->agent_id);
}

absl::StatusOr<IssuedCredential> AgentCredentials::Issue(const std::string& agent_id,
                                                         const std::string& csr_pem,
                                                         const AssignmentSnapshot& snapshot) const {
  // Whole seconds, as certificates count time, so that a reset in the same
  // second as an issue never refuses the fresh credential.
  const absl::Time now = absl::FromUnixSeconds(absl::ToUnixSeconds(clock_->Now()));
  IssuedCredential issued;
  issued.expires = now + ttl_;
  if (!tls()) {
    issued.token = IssueAgentToken(agent_id, now, issued.expires, snapshot.agent_token_secret());
    return issued;
  }
  if (csr_pem.empty()) {
    return absl::InvalidArgumentError(
        "csr_pem is required: send a PKCS#10 request over the agent's own P-256 key");
  }
  ASSIGN_OR_RETURN(std::string certificate,
                   ca_->IssueAgentCertificate(csr_pem, agent_id, now, issued.expires));
  issued.certificate_pem = absl::StrCat(certificate, ca_->certificate_pem());
  return issued;
}

}  // namespace ringwarden

#include "server/agent_credentials.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/server_context.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/names.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "server/domain/enrollment.h"
#include "server/grpc_metadata.h"

namespace ringwarden {
namespace {

constexpr absl::string_view kBearer = "Bearer ";
constexpr absl::string_view kTokenPrefix = "rwa3.";
// Tokens issued before rwa3 carry their claims as base64url JSON. They are still accepted, so
// that agents holding one keep working until they renew it or it expires.
constexpr absl::string_view kJsonTokenPrefix = "rwa2.";
constexpr size_t kMaxTokenBytes = 1024;
// Unix seconds in a token: up to 12 digits (past the year 30000), in either format.
constexpr size_t kMaxSecondsDigits = 12;
constexpr int64_t kMaxTokenSeconds = 999'999'999'999;

// HmacSha256 is HMAC-SHA-256 of `data` under `key`. Every agent call verifies one: each thread
// keeps the last key it saw prepared (HmacSha256Key), so a call neither prepares the key again
// nor allocates a hash context.
std::array<unsigned char, 32> HmacSha256(absl::string_view key, absl::string_view data) {
  struct Prepared {
    std::string key;
    std::optional<HmacSha256Key> ready;
  };
  thread_local Prepared prepared;
  if (!prepared.ready.has_value() || prepared.key != key) {
    prepared.ready.reset();
    prepared.ready.emplace(key);
    prepared.key = std::string(key);
  }
  std::array<unsigned char, 32> out;
  prepared.ready->Mac(data, out.data());
  return out;
}

// TokenClaims reads a token body's claims as the JSON is parsed, building no document: an
// object whose "id" is a string and whose "iat" and "exp" are integers. Anything nested is
// refused; other keys with plain values are skipped.
class TokenClaims final : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool complete() const { return has_id_ && has_iat_ && has_exp_; }

  std::string id;
  int64_t iat = 0;
  int64_t exp = 0;

  bool start_object(std::size_t) override { return depth_++ == 0; }
  bool end_object() override { return --depth_ == 0; }
  bool key(string_t& name) override {
    key_ = name == "id"    ? Key::kId
           : name == "iat" ? Key::kIat
           : name == "exp" ? Key::kExp
                           : Key::kOther;
    return true;
  }
  bool string(string_t& value) override {
    if (key_ == Key::kId) {
      id = std::move(value);
      has_id_ = true;
      return true;
    }
    return key_ == Key::kOther;
  }
  bool number_integer(number_integer_t value) override { return Integer(value); }
  bool number_unsigned(number_unsigned_t value) override {
    return Integer(static_cast<int64_t>(value));
  }
  bool number_float(number_float_t, const string_t&) override { return key_ == Key::kOther; }
  bool boolean(bool) override { return key_ == Key::kOther; }
  bool null() override { return key_ == Key::kOther; }
  bool binary(binary_t&) override { return false; }
  bool start_array(std::size_t) override { return false; }
  bool end_array() override { return false; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  enum class Key { kNone, kId, kIat, kExp, kOther };
  bool Integer(int64_t value) {
    switch (key_) {
      case Key::kIat:
        iat = value;
        has_iat_ = true;
        return true;
      case Key::kExp:
        exp = value;
        has_exp_ = true;
        return true;
      case Key::kOther:
        return true;
      default:
        return false;
    }
  }

  int depth_ = 0;
  Key key_ = Key::kNone;
  bool has_id_ = false, has_iat_ = false, has_exp_ = false;
};

// Claims is what a token says, viewed in the token or in a per-thread buffer.
struct Claims {
  absl::string_view id;
  int64_t iat = 0;
  int64_t exp = 0;
};

// ReadSeconds reads Unix seconds written as plain decimal digits, nothing else.
bool ReadSeconds(absl::string_view digits, int64_t& out) {
  if (digits.empty() || digits.size() > kMaxSecondsDigits ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  return absl::SimpleAtoi(digits, &out);
}

// ReadFields reads an rwa3 token's claims, "<iat>.<exp>.<agent id>" (the id last: it may hold
// dots). Nothing is decoded or allocated.
bool ReadFields(absl::string_view fields, Claims& claims) {
  const size_t first = fields.find('.');
  if (first == absl::string_view::npos) {
    return false;
  }
  const size_t second = fields.find('.', first + 1);
  if (second == absl::string_view::npos) {
    return false;
  }
  claims.id = fields.substr(second + 1);
  return ReadSeconds(fields.substr(0, first), claims.iat) &&
         ReadSeconds(fields.substr(first + 1, second - first - 1), claims.exp);
}

// ReadJson reads an rwa2 token's claims, base64url JSON, decoded into `json`.
bool ReadJson(absl::string_view body, std::string& json, Claims& claims) {
  TokenClaims parsed;
  if (!absl::WebSafeBase64Unescape(body, &json) ||
      !nlohmann::json::sax_parse(json, &parsed, nlohmann::json::input_format_t::json,
                                 /*strict=*/true) ||
      !parsed.complete()) {
    return false;
  }
  // The id is kept in the buffer, in place of the JSON it was read from.
  json = std::move(parsed.id);
  claims = Claims{json, parsed.iat, parsed.exp};
  return true;
}

}  // namespace

std::string IssueAgentToken(absl::string_view agent_id, absl::Time issued, absl::Time expires,
                            absl::string_view secret) {
  std::string token = absl::StrCat(kTokenPrefix, absl::ToUnixSeconds(issued), ".",
                                   absl::ToUnixSeconds(expires), ".", agent_id);
  const std::array<unsigned char, 32> mac = HmacSha256(secret, token);
  absl::StrAppend(&token, ".",
                  absl::WebSafeBase64Escape(
                      absl::string_view(reinterpret_cast<const char*>(mac.data()), mac.size())));
  return token;
}

absl::StatusOr<PresentedCredential> VerifyAgentToken(absl::string_view token,
                                                     absl::string_view secret, absl::Time now) {
  const auto invalid = [] {
    return absl::UnauthenticatedError("agent credential is not valid; enroll again");
  };
  const bool json = absl::StartsWith(token, kJsonTokenPrefix);
  if (token.size() > kMaxTokenBytes || !(json || absl::StartsWith(token, kTokenPrefix))) {
    return invalid();
  }
  // An rwa3 MAC covers the whole token before its last dot, prefix included (the id may hold
  // dots, the base64url MAC none). An rwa2 MAC covers the body between the prefix and the next
  // dot. So an rwa2 MAC input never holds a dot and an rwa3 one always does: neither format's
  // MAC can stand for the other's.
  const size_t dot = json ? token.find('.', kJsonTokenPrefix.size()) : token.rfind('.');
  if (dot == absl::string_view::npos || dot < kTokenPrefix.size()) {
    return invalid();
  }
  const absl::string_view maced = token.substr(0, dot).substr(json ? kJsonTokenPrefix.size() : 0);
  // HmacSha256 cannot come back empty (a failing OpenSSL stops the process), so an empty MAC
  // never matches.
  // Decoded into buffers kept per thread: every call carries a token.
  thread_local std::string mac;
  thread_local std::string json_buffer;
  const std::array<unsigned char, 32> want = HmacSha256(secret, maced);
  const bool mac_holds = absl::WebSafeBase64Unescape(token.substr(dot + 1), &mac) &&
                         mac.size() == want.size() &&
                         CRYPTO_memcmp(mac.data(), want.data(), want.size()) == 0;
  // The buffer outlives the call: the credential's MAC is not left in it.
  OPENSSL_cleanse(mac.data(), mac.size());
  if (!mac_holds) {
    return invalid();
  }
  Claims claims;
  if (!(json ? ReadJson(maced, json_buffer, claims)
             : ReadFields(maced.substr(kTokenPrefix.size()), claims)) ||
      !IsValidAgentId(claims.id) || claims.iat < 0 || claims.iat > kMaxTokenSeconds ||
      claims.exp < 0 || claims.exp > kMaxTokenSeconds) {
    return invalid();
  }
  const absl::Time expires = absl::FromUnixSeconds(claims.exp);
  if (now >= expires) {
    return absl::UnauthenticatedError(absl::StrCat("agent credential expired at ",
                                                   absl::FormatTime(expires, absl::UTCTimeZone()),
                                                   "; enroll again"));
  }
  return PresentedCredential{std::string(claims.id), absl::FromUnixSeconds(claims.iat)};
}

absl::StatusOr<PresentedCredential> ReadAgentCertificate(absl::string_view pem) {
  absl::StatusOr<CertificateInfo> info = InspectCertificate(pem);
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

CertificateIdentities::CertificateIdentities(size_t capacity, Reader read)
    : read_(std::move(read)), known_(capacity) {}

absl::StatusOr<PresentedCredential> CertificateIdentities::Identify(absl::string_view pem) {
  // The whole certificate is the key (by a collision-resistant digest): one that differs
  // in any byte, a renewal included, is read on its own.
  const std::string digest = Sha256(pem);
  {
    absl::MutexLock lock(&mu_);
    if (const PresentedCredential* known = known_.Get(digest); known != nullptr) {
      return *known;
    }
  }
  absl::StatusOr<PresentedCredential> read = read_(pem);
  if (read.ok()) {
    absl::MutexLock lock(&mu_);
    known_.GetOrInsert(digest, *read);
  }
  return read;
}

size_t CertificateIdentities::size() const {
  absl::MutexLock lock(&mu_);
  return known_.size();
}

AgentCredentials::AgentCredentials(std::optional<CertificateAuthority> ca, absl::Duration ttl,
                                   const Clock& clock)
    : ca_(std::move(ca)), ttl_(ttl), clock_(&clock) {
  if (ca_.has_value()) {
    certificates_ =
        std::make_shared<CertificateIdentities>(kRememberedCertificates, ReadAgentCertificate);
  }
}

// PeerCertificate reads the identity of a TLS peer whose certificate the handshake verified
// against --client-ca.
absl::StatusOr<std::optional<PresentedCredential>> AgentCredentials::PeerCertificate(
    const grpc::ServerContextBase& ctx) const {
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) {
    return std::nullopt;
  }
  const std::vector<grpc::string_ref> pem =
      auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pem.size() != 1) {
    return absl::UnauthenticatedError("the client certificate cannot be read");
  }
  return certificates_->Identify(absl::string_view(pem[0].data(), pem[0].size()));
}

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
  absl::string_view header = MetadataValue(ctx, "authorization");
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
  // What the server knows of the agent: its id, and the labels an admin or its enrollment
  // token gave it.
  const AgentGate* gate = snapshot.Gate(presented->agent_id);
  RETURN_IF_ERROR(AdmitCredential(gate, presented->agent_id, presented->issued_at));
  AgentIdentity identity{std::move(presented->agent_id), {}};
  if (gate != nullptr) {
    identity.snapshot_labels = &gate->labels;
  }
  return identity;
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

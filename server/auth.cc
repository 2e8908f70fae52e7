#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace ringwarden {
namespace {

constexpr absl::string_view kBearer = "Bearer ";
constexpr absl::string_view kAgentTokenPrefix = "rwa1.";

std::string HmacSha256(absl::string_view key, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

absl::StatusOr<absl::string_view> BearerToken(absl::string_view header) {
  if (!absl::ConsumePrefix(&header, kBearer) || header.empty()) {
    return absl::UnauthenticatedError(
        "missing credentials: send metadata \"authorization: Bearer <token>\"");
  }
  return header;
}

}  // namespace

absl::StatusOr<Principal> AdminAuthenticator::Authorize(absl::string_view header,
                                                        Role needed) const {
  auto token = BearerToken(header);
  if (!token.ok()) {
    return token.status();
  }
  absl::StatusOr<Principal> found = tokens_.Authenticate(*token);
  if (!found.ok()) {
    return found.status();
  }
  if (static_cast<int>(found->role) < static_cast<int>(needed)) {
    return absl::PermissionDeniedError(absl::StrCat(
        found->name, " has role ", RoleName(found->role), "; this needs ", RoleName(needed)));
  }
  return *found;
}

std::string IssueAgentToken(const AgentIdentity& identity, absl::string_view secret) {
  const std::string body =
      nlohmann::json{{"id", identity.agent_id}, {"labels", identity.labels}}.dump();
  const std::string encoded = absl::WebSafeBase64Escape(body);
  return absl::StrCat(kAgentTokenPrefix, encoded, ".",
                      absl::WebSafeBase64Escape(HmacSha256(secret, encoded)));
}

absl::StatusOr<AgentIdentity> VerifyAgentToken(absl::string_view header, absl::string_view agent_id,
                                               absl::string_view secret) {
  auto token_or = BearerToken(header);
  if (!token_or.ok()) {
    return token_or.status();
  }
  absl::string_view token = *token_or;
  const auto invalid =
      absl::UnauthenticatedError("agent credential is not valid for this agent id; enroll again");
  if (token.size() > 8192 || !absl::ConsumePrefix(&token, kAgentTokenPrefix)) {
    return invalid;
  }
  const size_t dot = token.find('.');
  if (dot == absl::string_view::npos) {
    return invalid;
  }
  const absl::string_view encoded = token.substr(0, dot);
  std::string mac;
  if (!absl::WebSafeBase64Unescape(token.substr(dot + 1), &mac) ||
      !ConstantTimeEquals(mac, HmacSha256(secret, encoded))) {
    return invalid;
  }
  std::string body;
  if (!absl::WebSafeBase64Unescape(encoded, &body)) {
    return invalid;
  }
  AgentIdentity identity;
  const nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("id") || !doc["id"].is_string()) {
    return invalid;
  }
  identity.agent_id = doc["id"].get<std::string>();
  if (doc.contains("labels") && doc["labels"].is_object()) {
    for (const auto& [k, v] : doc["labels"].items()) {
      if (v.is_string()) {
        identity.labels[k] = v.get<std::string>();
      }
    }
  }
  if (identity.agent_id != agent_id) {
    return invalid;
  }
  return identity;
}

}  // namespace ringwarden

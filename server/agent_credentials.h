// agent_credentials.h: how an agent proves who it is, on the wire.
//
// Over TLS (the default) an agent's credential is a client certificate that
// the server's agent CA issued from the agent's own CSR, naming the agent id
// in a SAN URI. TLS verifies it against --client-ca during the handshake (an
// unknown CA or an expired certificate never gets a call through); here the
// verified peer certificate becomes the caller's identity, so the agent id of
// a call never comes from a request body. A request naming another id is
// refused, as is a revoked agent or a certificate older than an admin reset.
//
// A server started with --insecure (loopback only) has no certificates: the
// credential is then a bearer token MACed with the fleet secret stored in the
// database, carrying the agent id and an expiry, checked the same way.
// Thread-safety: immutable after construction; safe to share.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/pki.h"
#include "server/core/identity.h"
#include "server/core/snapshot.h"
#include "server/domain/lru_map.h"

namespace grpc {
class ServerContextBase;
}  // namespace grpc

namespace ringwarden {

// Bounds of --agent-credential-ttl.
inline constexpr absl::Duration kMinAgentCredentialTtl = absl::Minutes(10);
inline constexpr absl::Duration kMaxAgentCredentialTtl = absl::Hours(24 * 90);
inline constexpr absl::Duration kDefaultAgentCredentialTtl = absl::Hours(24 * 7);

// IssuedCredential is what Enroll and RenewCredential hand out.
struct IssuedCredential {
  std::string certificate_pem;  // TLS: the client certificate, then the CA
  std::string token;            // --insecure: the bearer token
  absl::Time expires;
};

// PresentedCredential is what a call proves.
struct PresentedCredential {
  std::string agent_id;
  absl::Time issued_at;
};

// IssueAgentToken mints the --insecure bearer token "rwa3.<iat>.<exp>.<agent id>.<mac>": Unix
// seconds in decimal, the id as it is (its characters are safe in a header), and the base64url
// HMAC-SHA-256 of everything before the last dot. Every poll verifies one, so its claims are
// read without decoding or parsing.
std::string IssueAgentToken(absl::string_view agent_id, absl::Time issued, absl::Time expires,
                            absl::string_view secret);

// VerifyAgentToken checks a presented token (without "Bearer "): UNAUTHENTICATED
// when it is over 1 KiB, malformed, MACed with another secret, names no valid agent id or
// expired at `now`. Tokens issued before rwa3, "rwa2.<base64url JSON {id, iat, exp}>.<MAC of
// the body>", are still accepted until they expire (each lasts the --agent-credential-ttl it
// was issued under, at most 90 days).
absl::StatusOr<PresentedCredential> VerifyAgentToken(absl::string_view token,
                                                     absl::string_view secret, absl::Time now);

// ReadAgentCertificate reads the agent identity of a client certificate (PEM)
// the TLS handshake verified: the agent id of its SPIFFE URI SAN and its
// notBefore. UNAUTHENTICATED when it cannot be read or is no agent credential.
absl::StatusOr<PresentedCredential> ReadAgentCertificate(absl::string_view pem);

// CertificateIdentities remembers the identity read from each client
// certificate, by the SHA-256 of its PEM, for at most `capacity` certificates
// (the least recently presented is forgotten first). Reading a certificate
// costs OpenSSL's X.509 and public-key decoding, about 0.1 ms, and every call
// of an agent presents the same one; a digest and a lookup cost under a
// microsecond. A certificate that cannot be read is read again each time.
// Thread-safe.
class CertificateIdentities {
 public:
  using Reader = std::function<absl::StatusOr<PresentedCredential>(absl::string_view pem)>;
  CertificateIdentities(size_t capacity, Reader read);

  // Identify returns what `read` returned for this PEM, reading it only the first time.
  absl::StatusOr<PresentedCredential> Identify(absl::string_view pem);
  size_t size() const;

 private:
  const Reader read_;
  mutable absl::Mutex mu_;
  LruMap<PresentedCredential> known_ ABSL_GUARDED_BY(mu_);
};

// kRememberedCertificates: the client certificates a replica remembers (about
// 200 B each), as many as the agents whose rate buckets it keeps by default.
inline constexpr size_t kRememberedCertificates = 200'000;

class AgentCredentials {
 public:
  // Tls issues certificates from `ca`, valid for `ttl`.
  static AgentCredentials Tls(CertificateAuthority ca, absl::Duration ttl, const Clock& clock);
  // Insecure issues MACed bearer tokens, valid for `ttl`.
  static AgentCredentials Insecure(absl::Duration ttl, const Clock& clock);

  bool tls() const { return ca_.has_value(); }

  // Presented returns the credential a call carries: nullopt when it carries
  // none, UNAUTHENTICATED when it carries one that does not hold.
  absl::StatusOr<std::optional<PresentedCredential>> Presented(
      const grpc::ServerContextBase& ctx, const AssignmentSnapshot& snapshot) const;

  // Authenticate returns the identity of a call made for `request_agent_id`:
  // UNAUTHENTICATED without a credential, PERMISSION_DENIED when the
  // credential names another agent, is revoked or predates a reset.
  absl::StatusOr<AgentIdentity> Authenticate(const grpc::ServerContextBase& ctx,
                                             const std::string& request_agent_id,
                                             const AssignmentSnapshot& snapshot) const;

  // Issue mints a credential for `agent_id`; over TLS from `csr_pem` (the
  // agent's own key), which is then required.
  absl::StatusOr<IssuedCredential> Issue(const std::string& agent_id, const std::string& csr_pem,
                                         const AssignmentSnapshot& snapshot) const;

 private:
  AgentCredentials(std::optional<CertificateAuthority> ca, absl::Duration ttl, const Clock& clock);
  absl::StatusOr<std::optional<PresentedCredential>> PeerCertificate(
      const grpc::ServerContextBase& ctx) const;

  std::optional<CertificateAuthority> ca_;
  // Over TLS: the identities of the client certificates seen (shared by copies).
  std::shared_ptr<CertificateIdentities> certificates_;
  absl::Duration ttl_;
  const Clock* clock_;
};

}  // namespace ringwarden

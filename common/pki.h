// pki.h: X.509 for agent identity (OpenSSL 3).
//
// An agent's credential is a client certificate issued by the server's agent
// CA from a certificate signing request whose private key never leaves the
// host. The agent id travels in one SAN URI, SPIFFE style:
//   spiffe://ringwarden/agent/<agent id>
//
//   ASSIGN_OR_RETURN(AgentKeyRequest req, MakeAgentKeyRequest("host-1"));   // on the agent
//   ASSIGN_OR_RETURN(auto ca, CertificateAuthority::FromPem(ca_cert, ca_key));  // server
//   ASSIGN_OR_RETURN(std::string cert, ca.IssueAgentCertificate(req.csr_pem, "host-1", from, to));
//   ASSIGN_OR_RETURN(CertificateInfo info, InspectCertificate(cert));
//
// Agent keys are ECDSA P-256, which every TLS stack accepts for client
// authentication. Objects are immutable after creation; thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ringwarden {

// Limits on what a peer may hand us to parse.
inline constexpr size_t kMaxCsrPemBytes = 8 * 1024;
inline constexpr size_t kMaxCertificatePemBytes = 16 * 1024;

// AgentSpiffeId returns "spiffe://ringwarden/agent/<agent_id>".
std::string AgentSpiffeId(absl::string_view agent_id);
// AgentIdFromSpiffeId is its inverse; INVALID_ARGUMENT for any other URI.
absl::StatusOr<std::string> AgentIdFromSpiffeId(absl::string_view uri);

// AgentKeyRequest is a fresh private key and a CSR over it.
struct AgentKeyRequest {
  std::string private_key_pem;  // PKCS#8; keep it private (mode 0600)
  std::string csr_pem;
};
// MakeAgentKeyRequest makes an ECDSA P-256 key and a CSR naming `agent_id`.
absl::StatusOr<AgentKeyRequest> MakeAgentKeyRequest(absl::string_view agent_id);
// MakeCsr makes a CSR naming `agent_id` over an existing private key.
absl::StatusOr<std::string> MakeCsr(absl::string_view private_key_pem, absl::string_view agent_id);

// CertificateInfo is what we read back from a certificate.
struct CertificateInfo {
  std::string subject_cn;
  std::string uri_san;  // the first URI SAN, "" when none
  std::string serial_hex;
  absl::Time not_before;
  absl::Time not_after;
};
// InspectCertificate parses one PEM certificate (the first of a chain).
absl::StatusOr<CertificateInfo> InspectCertificate(absl::string_view cert_pem);

// CertificateAuthority issues agent certificates.
class CertificateAuthority {
 public:
  // FromPem loads the CA certificate and its private key (EC, RSA or Ed25519);
  // INVALID_ARGUMENT when they do not match or the certificate is not a CA.
  static absl::StatusOr<CertificateAuthority> FromPem(absl::string_view cert_pem,
                                                      absl::string_view key_pem);

  // IssueAgentCertificate checks the CSR (PEM, at most kMaxCsrPemBytes, self
  // signature valid, ECDSA P-256 key) and returns a client certificate for
  // `agent_id` valid from `not_before` to `not_after`. Whatever names the CSR
  // carries are ignored: the certificate names only `agent_id`.
  absl::StatusOr<std::string> IssueAgentCertificate(absl::string_view csr_pem,
                                                    absl::string_view agent_id,
                                                    absl::Time not_before,
                                                    absl::Time not_after) const;

  const std::string& certificate_pem() const { return cert_pem_; }

 private:
  struct Keys;
  CertificateAuthority(std::shared_ptr<const Keys> keys, std::string cert_pem)
      : keys_(std::move(keys)), cert_pem_(std::move(cert_pem)) {}
  std::shared_ptr<const Keys> keys_;
  std::string cert_pem_;
};

}  // namespace ringwarden

#include "common/pki.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/names.h"
#include "common/status_macros.h"

namespace ringwarden {
namespace {

constexpr absl::string_view kAgentUriPrefix = "spiffe://ringwarden/agent/";

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct ReqFree {
  void operator()(X509_REQ* r) const { X509_REQ_free(r); }
};
struct ExtFree {
  void operator()(X509_EXTENSION* e) const { X509_EXTENSION_free(e); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Req = std::unique_ptr<X509_REQ, ReqFree>;

// OpenSslError names what failed and the library's reason, and clears the queue.
std::string OpenSslError(absl::string_view what) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) {
    return std::string(what);
  }
  char reason[256];
  ERR_error_string_n(code, reason, sizeof(reason));
  return absl::StrCat(what, ": ", reason);
}

Bio ReadOnlyBio(absl::string_view data) {
  return Bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string DrainBio(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

absl::StatusOr<Pkey> ReadPrivateKey(absl::string_view pem, absl::string_view what) {
  if (pem.empty() || pem.size() > kMaxCertificatePemBytes) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is empty or too large"));
  }
  Bio bio = ReadOnlyBio(pem);
  Pkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        OpenSslError(absl::StrCat(what, " is not a PEM private key")));
  }
  return key;
}

absl::StatusOr<Cert> ReadCertificate(absl::string_view pem) {
  if (pem.empty() || pem.size() > kMaxCertificatePemBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("a certificate must be 1 to ", kMaxCertificatePemBytes, " bytes of PEM"));
  }
  Bio bio = ReadOnlyBio(pem);
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) {
    return absl::InvalidArgumentError(OpenSslError("not a PEM certificate"));
  }
  return cert;
}

bool IsP256(EVP_PKEY* key) {
  if (!EVP_PKEY_is_a(key, "EC")) {
    return false;
  }
  char group[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_group_name(key, group, sizeof(group), &len) != 1) {
    return false;
  }
  const absl::string_view name(group, len);
  return name == "prime256v1" || name == "P-256";
}

// SignWith signs with SHA-256, or with no digest for Ed25519 keys.
const EVP_MD* DigestFor(EVP_PKEY* key) {
  return EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448") ? nullptr : EVP_sha256();
}

absl::StatusOr<absl::Time> ToTime(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    return absl::InvalidArgumentError("certificate has an unreadable validity time");
  }
  return absl::FromTimeT(timegm(&tm));
}

absl::Status AddExtension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  std::unique_ptr<X509_EXTENSION, ExtFree> ext(
      X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  if (ext == nullptr || X509_add_ext(cert, ext.get(), -1) != 1) {
    return absl::InternalError(OpenSslError(absl::StrCat("cannot add extension ", value)));
  }
  return absl::OkStatus();
}

absl::Status SetCommonName(X509_NAME* name, absl::string_view cn) {
  const std::string value(cn);
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                 0) != 1) {
    return absl::InternalError(OpenSslError("cannot set the common name"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string AgentSpiffeId(absl::string_view agent_id) {
  return absl::StrCat(kAgentUriPrefix, agent_id);
}

absl::StatusOr<std::string> AgentIdFromSpiffeId(absl::string_view uri) {
  if (!absl::StartsWith(uri, kAgentUriPrefix)) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate URI is not an agent identity (", kAgentUriPrefix, "<id>)"));
  }
  std::string id(uri.substr(kAgentUriPrefix.size()));
  if (!IsValidAgentId(id)) {
    return absl::InvalidArgumentError("certificate URI carries an invalid agent id");
  }
  return id;
}

absl::StatusOr<std::string> MakeCsr(absl::string_view private_key_pem, absl::string_view agent_id) {
  if (!IsValidAgentId(agent_id)) {
    return absl::InvalidArgumentError("agent id must be 1-128 characters of [A-Za-z0-9._:-]");
  }
  ASSIGN_OR_RETURN(Pkey key, ReadPrivateKey(private_key_pem, "agent key"));
  Req req(X509_REQ_new());
  if (req == nullptr || X509_REQ_set_version(req.get(), 0) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1) {
    return absl::InternalError(OpenSslError("cannot build the CSR"));
  }
  absl::Status named = SetCommonName(X509_REQ_get_subject_name(req.get()), agent_id);
  if (!named.ok()) {
    return named;
  }
  if (X509_REQ_sign(req.get(), key.get(), DigestFor(key.get())) <= 0) {
    return absl::InternalError(OpenSslError("cannot sign the CSR"));
  }
  Bio out(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509_REQ(out.get(), req.get()) != 1) {
    return absl::InternalError(OpenSslError("cannot write the CSR"));
  }
  return DrainBio(out.get());
}

absl::StatusOr<AgentKeyRequest> MakeAgentKeyRequest(absl::string_view agent_id) {
  Pkey key(EVP_EC_gen("P-256"));
  if (key == nullptr) {
    return absl::InternalError(OpenSslError("cannot generate a P-256 key"));
  }
  Bio out(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return absl::InternalError(OpenSslError("cannot write the key"));
  }
  AgentKeyRequest result;
  result.private_key_pem = DrainBio(out.get());
  absl::StatusOr<std::string> csr = MakeCsr(result.private_key_pem, agent_id);
  if (!csr.ok()) {
    return csr.status();
  }
  result.csr_pem = *std::move(csr);
  return result;
}

absl::StatusOr<CertificateInfo> InspectCertificate(absl::string_view cert_pem) {
  absl::StatusOr<Cert> cert = ReadCertificate(cert_pem);
  if (!cert.ok()) {
    return cert.status();
  }
  X509* x = cert->get();
  CertificateInfo info;
  char cn[256] = {0};
  const int cn_len = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
                                               static_cast<int>(sizeof(cn)));
  if (cn_len > 0) {
    info.subject_cn.assign(cn, static_cast<size_t>(cn_len));
  }
  GENERAL_NAMES* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  if (names != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
      if (name->type == GEN_URI) {
        const ASN1_STRING* uri = name->d.uniformResourceIdentifier;
        info.uri_san.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                            static_cast<size_t>(ASN1_STRING_length(uri)));
        break;
      }
    }
    GENERAL_NAMES_free(names);
  }
  BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr);
  if (serial != nullptr) {
    char* hex = BN_bn2hex(serial);
    info.serial_hex = hex;
    OPENSSL_free(hex);
    BN_free(serial);
  }
  absl::StatusOr<absl::Time> from = ToTime(X509_get0_notBefore(x));
  absl::StatusOr<absl::Time> to = ToTime(X509_get0_notAfter(x));
  if (!from.ok() || !to.ok()) {
    return absl::InvalidArgumentError("certificate has an unreadable validity period");
  }
  info.not_before = *from;
  info.not_after = *to;
  return info;
}

struct CertificateAuthority::Keys {
  Cert cert;
  Pkey key;
};

absl::StatusOr<CertificateAuthority> CertificateAuthority::FromPem(absl::string_view cert_pem,
                                                                   absl::string_view key_pem) {
  absl::StatusOr<Cert> cert = ReadCertificate(cert_pem);
  if (!cert.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("agent CA: ", cert.status().message()));
  }
  absl::StatusOr<Pkey> key = ReadPrivateKey(key_pem, "agent CA key");
  if (!key.ok()) {
    return key.status();
  }
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("agent CA key does not match the agent CA certificate");
  }
  if (X509_check_ca(cert->get()) == 0) {
    return absl::InvalidArgumentError(
        "agent CA certificate is not a CA (basicConstraints CA:TRUE is missing)");
  }
  auto keys = std::make_shared<Keys>();
  keys->cert = *std::move(cert);
  keys->key = *std::move(key);
  return CertificateAuthority(std::move(keys), std::string(cert_pem));
}

absl::StatusOr<std::string> CertificateAuthority::IssueAgentCertificate(
    absl::string_view csr_pem, absl::string_view agent_id, absl::Time not_before,
    absl::Time not_after) const {
  if (!IsValidAgentId(agent_id)) {
    return absl::InvalidArgumentError("agent id must be 1-128 characters of [A-Za-z0-9._:-]");
  }
  if (csr_pem.empty() || csr_pem.size() > kMaxCsrPemBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("csr_pem must be 1 to ", kMaxCsrPemBytes, " bytes of PEM"));
  }
  if (not_after <= not_before) {
    return absl::InvalidArgumentError("certificate validity ends before it begins");
  }
  Bio in = ReadOnlyBio(csr_pem);
  Req req(PEM_read_bio_X509_REQ(in.get(), nullptr, nullptr, nullptr));
  if (req == nullptr) {
    return absl::InvalidArgumentError(OpenSslError("csr_pem is not a PEM certificate request"));
  }
  EVP_PKEY* subject_key = X509_REQ_get0_pubkey(req.get());
  if (subject_key == nullptr || !IsP256(subject_key)) {
    ERR_clear_error();
    return absl::InvalidArgumentError("csr_pem must carry an ECDSA P-256 public key");
  }
  if (X509_REQ_verify(req.get(), subject_key) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "csr_pem is not signed by its own key (proof of possession failed)");
  }

  Cert cert(X509_new());
  unsigned char serial_bytes[16];
  if (cert == nullptr || RAND_bytes(serial_bytes, sizeof(serial_bytes)) != 1) {
    return absl::InternalError(OpenSslError("cannot start a certificate"));
  }
  serial_bytes[0] &= 0x7f;  // a positive serial
  BIGNUM* serial = BN_bin2bn(serial_bytes, sizeof(serial_bytes), nullptr);
  ASN1_INTEGER* serial_asn1 = BN_to_ASN1_INTEGER(serial, nullptr);
  BN_free(serial);
  const bool serial_set =
      serial_asn1 != nullptr && X509_set_serialNumber(cert.get(), serial_asn1) == 1;
  ASN1_INTEGER_free(serial_asn1);
  if (!serial_set || X509_set_version(cert.get(), 2) != 1 ||
      X509_set_issuer_name(cert.get(), X509_get_subject_name(keys_->cert.get())) != 1 ||
      X509_set_pubkey(cert.get(), subject_key) != 1 ||
      ASN1_TIME_set(X509_getm_notBefore(cert.get()), absl::ToTimeT(not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), absl::ToTimeT(not_after)) == nullptr) {
    return absl::InternalError(OpenSslError("cannot fill the certificate"));
  }
  absl::Status named = SetCommonName(X509_get_subject_name(cert.get()), agent_id);
  if (!named.ok()) {
    return named;
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, keys_->cert.get(), cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : std::initializer_list<std::pair<int, std::string>>{
           {NID_basic_constraints, "critical,CA:FALSE"},
           {NID_key_usage, "critical,digitalSignature"},
           {NID_ext_key_usage, "clientAuth"},
           {NID_subject_alt_name, absl::StrCat("URI:", AgentSpiffeId(agent_id))},
           {NID_subject_key_identifier, "hash"},
           {NID_authority_key_identifier, "keyid:always"}}) {
    absl::Status added = AddExtension(cert.get(), &ctx, nid, value);
    if (!added.ok()) {
      return added;
    }
  }
  if (X509_sign(cert.get(), keys_->key.get(), DigestFor(keys_->key.get())) <= 0) {
    return absl::InternalError(OpenSslError("cannot sign the certificate"));
  }
  Bio out(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509(out.get(), cert.get()) != 1) {
    return absl::InternalError(OpenSslError("cannot write the certificate"));
  }
  return DrainBio(out.get());
}

}  // namespace ringwarden

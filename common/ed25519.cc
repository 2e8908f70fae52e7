#include "common/ed25519.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace ringwarden {
namespace {

constexpr size_t kRawKeyBytes = 32;
constexpr size_t kSignatureBytes = 64;
// An Ed25519 key PEM is under 200 bytes; the bound keeps BIO lengths in int range
// and makes a wrong file (a log, a binary) fail fast.
constexpr size_t kMaxPemBytes = 64 * 1024;

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct BioDeleter {
  void operator()(BIO* p) const { BIO_free_all(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

const unsigned char* Bytes(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
unsigned char* MutableBytes(std::string& s) { return reinterpret_cast<unsigned char*>(&s[0]); }

// OpenSslError drains this thread's OpenSSL error queue into one line, so a
// failure says why and leaves no stale entry to confuse the next call.
std::string OpenSslError() {
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    absl::StrAppend(&out, out.empty() ? "" : "; ", buf);
  }
  return out.empty() ? "no OpenSSL detail" : out;
}

// Fatal stops on failures only allocation or a broken OpenSSL can cause; a
// caller cannot do anything useful with them.
[[noreturn]] void Fatal(const char* what) {
  std::fprintf(stderr, "ringwarden: %s: %s\n", what, OpenSslError().c_str());
  std::abort();
}

// NoPassphrase makes encrypted PEM fail instead of OpenSSL's default of
// prompting on the controlling terminal, which would hang a server.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) { return -1; }

absl::StatusOr<BioPtr> ReadOnlyBio(absl::string_view pem) {
  if (pem.size() > kMaxPemBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PEM input is ", pem.size(), " bytes; a key PEM is at most ", kMaxPemBytes, " bytes"));
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) {
    Fatal("BIO_new_mem_buf");
  }
  return bio;
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  if (len <= 0 || data == nullptr) {
    Fatal("BIO_get_mem_data");
  }
  return std::string(data, static_cast<size_t>(len));
}

absl::Status CheckEd25519(EVP_PKEY* pkey, absl::string_view what) {
  if (EVP_PKEY_is_a(pkey, "ED25519") != 1) {
    const char* type = EVP_PKEY_get0_type_name(pkey);
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is ", type != nullptr ? type : "of an unknown type",
                     ", not Ed25519; make one with `openssl genpkey -algorithm ed25519`"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Ed25519PublicKey> PublicOf(EVP_PKEY* pkey) {
  std::string raw(kRawKeyBytes, '\0');
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(pkey, MutableBytes(raw), &len) != 1 || len != kRawKeyBytes) {
    Fatal("EVP_PKEY_get_raw_public_key");
  }
  return Ed25519PublicKey::FromRaw(raw);
}

PkeyPtr PublicPkey(absl::string_view raw) {
  PkeyPtr pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, Bytes(raw), raw.size()));
  if (!pkey) {
    Fatal("EVP_PKEY_new_raw_public_key");
  }
  return pkey;
}

PkeyPtr PrivatePkey(absl::string_view seed) {
  // OpenSSL copies the seed into key storage that EVP_PKEY_free wipes.
  PkeyPtr pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, Bytes(seed), seed.size()));
  if (!pkey) {
    Fatal("EVP_PKEY_new_raw_private_key");
  }
  return pkey;
}

}  // namespace

// --- Ed25519PublicKey ---

Ed25519PublicKey::Ed25519PublicKey(std::string raw)
    : raw_(std::move(raw)), key_id_(Sha256Hex(raw_)) {}

absl::StatusOr<Ed25519PublicKey> Ed25519PublicKey::FromPem(absl::string_view pem) {
  ASSIGN_OR_RETURN(BioPtr bio, ReadOnlyBio(pem));
  PkeyPtr pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, NoPassphrase, nullptr));
  if (!pkey) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a PEM public key (expected a \"-----BEGIN PUBLIC KEY-----\" block, as written by "
        "`openssl pkey -pubout`): ",
        OpenSslError()));
  }
  RETURN_IF_ERROR(CheckEd25519(pkey.get(), "public key"));
  return PublicOf(pkey.get());
}

absl::StatusOr<Ed25519PublicKey> Ed25519PublicKey::FromRaw(absl::string_view raw) {
  if (raw.size() != kRawKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("raw Ed25519 public key must be ", kRawKeyBytes, " bytes, got ", raw.size()));
  }
  return Ed25519PublicKey(std::string(raw));
}

std::string Ed25519PublicKey::ToPem() const {
  PkeyPtr pkey = PublicPkey(raw_);
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), pkey.get()) != 1) {
    Fatal("PEM_write_bio_PUBKEY");
  }
  return BioContents(bio.get());
}

bool Ed25519PublicKey::Verify(absl::string_view message, absl::string_view signature) const {
  if (signature.size() != kSignatureBytes) {
    return false;
  }
  PkeyPtr pkey = PublicPkey(raw_);
  MdCtxPtr ctx(EVP_MD_CTX_new());
  // Ed25519 hashes internally, so the digest argument is NULL (one-shot API only).
  bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) == 1 &&
            EVP_DigestVerify(ctx.get(), Bytes(signature), signature.size(), Bytes(message),
                             message.size()) == 1;
  // A bad signature is an expected outcome; drop its queued error.
  ERR_clear_error();
  return ok;
}

// --- Ed25519PrivateKey ---

Ed25519PrivateKey::Ed25519PrivateKey(std::shared_ptr<evp_pkey_st> pkey, Ed25519PublicKey public_key)
    : pkey_(std::move(pkey)), public_key_(std::move(public_key)) {}

absl::StatusOr<Ed25519PrivateKey> Ed25519PrivateKey::Generate() {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr));
  EVP_PKEY* generated = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &generated) != 1) {
    // The CSPRNG may be unseeded (early boot, sandbox); that can clear up.
    return absl::UnavailableError(absl::StrCat("Ed25519 key generation failed: ", OpenSslError()));
  }
  PkeyPtr pkey(generated);
  ASSIGN_OR_RETURN(Ed25519PublicKey public_key, PublicOf(pkey.get()));
  return Ed25519PrivateKey(std::shared_ptr<EVP_PKEY>(std::move(pkey)), std::move(public_key));
}

absl::StatusOr<Ed25519PrivateKey> Ed25519PrivateKey::FromPem(absl::string_view pem) {
  ASSIGN_OR_RETURN(BioPtr bio, ReadOnlyBio(pem));
  PkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (!pkey) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not an unencrypted PEM private key (expected a \"-----BEGIN PRIVATE KEY-----\" block, as "
        "written by `openssl genpkey -algorithm ed25519`): ",
        OpenSslError()));
  }
  RETURN_IF_ERROR(CheckEd25519(pkey.get(), "private key"));
  ASSIGN_OR_RETURN(Ed25519PublicKey public_key, PublicOf(pkey.get()));
  return Ed25519PrivateKey(std::shared_ptr<EVP_PKEY>(std::move(pkey)), std::move(public_key));
}

absl::StatusOr<Ed25519PrivateKey> Ed25519PrivateKey::FromSeed(absl::string_view seed) {
  if (seed.size() != kRawKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("Ed25519 seed must be ", kRawKeyBytes, " bytes, got ", seed.size()));
  }
  PkeyPtr pkey = PrivatePkey(seed);
  ASSIGN_OR_RETURN(Ed25519PublicKey public_key, PublicOf(pkey.get()));
  return Ed25519PrivateKey(std::shared_ptr<EVP_PKEY>(std::move(pkey)), std::move(public_key));
}

absl::StatusOr<std::string> Ed25519PrivateKey::Sign(absl::string_view message) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  std::string signature(kSignatureBytes, '\0');
  size_t len = signature.size();
  // Ed25519 hashes internally, so the digest argument is NULL (one-shot API only).
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), MutableBytes(signature), &len, Bytes(message), message.size()) !=
          1 ||
      len != kSignatureBytes) {
    return absl::InternalError(absl::StrCat("Ed25519 signing failed: ", OpenSslError()));
  }
  return signature;
}

std::string Ed25519PrivateKey::ToPem() const {
  // Secure-heap BIO: its buffer is wiped when freed, the returned copy is the caller's.
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), pkey_.get(), nullptr, nullptr, 0, nullptr,
                                       nullptr) != 1) {
    Fatal("PEM_write_bio_PrivateKey");
  }
  return BioContents(bio.get());
}

}  // namespace ringwarden

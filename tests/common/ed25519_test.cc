#include "common/ed25519.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "common/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ringwarden {
namespace {

using ::testing::HasSubstr;

struct Rfc8032Vector {
  const char* name;
  const char* secret_key;
  const char* public_key;
  const char* message;
  const char* signature;
};

// RFC 8032 section 7.1, all Ed25519 test vectors, hex as printed in the RFC.
const Rfc8032Vector kRfc8032Vectors[] = {
    {"Test1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b"
     "46b"
     "d25bf5f0595bbe24655141438e7a100b"},
    {"Test2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11"
     "d8c"
     "387b2eaeb4302aeeb00d291612bb0c00"},
    {"Test3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc"
     "659"
     "4a7c15e9716ed28dc027beceea1ec40a"},
    {"Test1024", "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
     "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
     "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98"
     "fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8"
     "79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d"
     "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc"
     "1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe"
     "ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e"
     "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef"
     "efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7"
     "aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1"
     "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2"
     "d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24"
     "554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270"
     "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc"
     "2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07"
     "07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
     "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a"
     "ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429e"
     "c96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7"
     "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c"
     "42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8"
     "ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
     "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08"
     "d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649"
     "de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4"
     "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3"
     "2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e"
     "6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f"
     "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5"
     "0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1"
     "369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
     "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c"
     "0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0",
     "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d"
     "94b"
     "5e8fcd4f681e30a6ac00a9704a188a03"},
    {"ShaAbc", "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
     "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     // SHA-512("abc")
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3fee"
     "bbd"
     "454d4423643ce80e2a9ac94fa54ca49f",
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e"
     "030"
     "3dca179c138ac17ad9bef1177331a704"},
};

class Rfc8032Test : public ::testing::TestWithParam<Rfc8032Vector> {
 protected:
  std::string Seed() const { return absl::HexStringToBytes(GetParam().secret_key); }
  std::string Public() const { return absl::HexStringToBytes(GetParam().public_key); }
  std::string Message() const { return absl::HexStringToBytes(GetParam().message); }
  std::string Signature() const { return absl::HexStringToBytes(GetParam().signature); }
};

TEST_P(Rfc8032Test, VectorIsWellFormed) {
  EXPECT_EQ(Seed().size(), 32u);
  EXPECT_EQ(Public().size(), 32u);
  EXPECT_EQ(Signature().size(), 64u);
  if (std::string(GetParam().name) == "Test1024") {
    EXPECT_EQ(Message().size(), 1023u);
  }
}

TEST_P(Rfc8032Test, PublicKeyFromSeed) {
  absl::StatusOr<Ed25519PrivateKey> key = Ed25519PrivateKey::FromSeed(Seed());
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(absl::BytesToHexString(key->PublicKey().Raw()), GetParam().public_key);
  EXPECT_EQ(key->PublicKey().KeyId(), Sha256Hex(Public()));
}

TEST_P(Rfc8032Test, SignGivesExactSignature) {
  absl::StatusOr<Ed25519PrivateKey> key = Ed25519PrivateKey::FromSeed(Seed());
  ASSERT_TRUE(key.ok()) << key.status();
  absl::StatusOr<std::string> sig = key->Sign(Message());
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_EQ(absl::BytesToHexString(*sig), GetParam().signature);
}

TEST_P(Rfc8032Test, VerifyAcceptsVector) {
  absl::StatusOr<Ed25519PublicKey> pub = Ed25519PublicKey::FromRaw(Public());
  ASSERT_TRUE(pub.ok()) << pub.status();
  EXPECT_TRUE(pub->Verify(Message(), Signature()));
}

TEST_P(Rfc8032Test, VerifyRejectsAlteredMessage) {
  absl::StatusOr<Ed25519PublicKey> pub = Ed25519PublicKey::FromRaw(Public());
  ASSERT_TRUE(pub.ok()) << pub.status();
  const std::string message = Message();
  EXPECT_FALSE(pub->Verify(message + std::string(1, '\0'), Signature()));
  if (!message.empty()) {
    for (size_t pos : {size_t{0}, message.size() - 1}) {
      std::string flipped = message;
      flipped[pos] ^= 0x01;
      EXPECT_FALSE(pub->Verify(flipped, Signature())) << "flipped byte " << pos;
    }
    EXPECT_FALSE(pub->Verify(message.substr(0, message.size() - 1), Signature()));
  }
}

TEST_P(Rfc8032Test, VerifyRejectsAlteredSignature) {
  absl::StatusOr<Ed25519PublicKey> pub = Ed25519PublicKey::FromRaw(Public());
  ASSERT_TRUE(pub.ok()) << pub.status();
  const std::string sig = Signature();
  // Byte 0 is in R, byte 40 in S, byte 63 holds S's top bits.
  for (size_t pos : {0, 31, 32, 40, 63}) {
    std::string flipped = sig;
    flipped[pos] ^= 0x01;
    EXPECT_FALSE(pub->Verify(Message(), flipped)) << "flipped byte " << pos;
  }
  EXPECT_FALSE(pub->Verify(Message(), sig.substr(0, 63)));
  EXPECT_FALSE(pub->Verify(Message(), sig + "x"));
}

TEST_P(Rfc8032Test, VerifyRejectsOtherPublicKey) {
  std::string other = Public();
  other[0] ^= 0x01;
  absl::StatusOr<Ed25519PublicKey> pub = Ed25519PublicKey::FromRaw(other);
  ASSERT_TRUE(pub.ok()) << pub.status();
  EXPECT_FALSE(pub->Verify(Message(), Signature()));
}

INSTANTIATE_TEST_SUITE_P(Rfc8032Section71, Rfc8032Test, ::testing::ValuesIn(kRfc8032Vectors),
                         [](const ::testing::TestParamInfo<Rfc8032Vector>& info) {
                           return std::string(info.param.name);
                         });

// RFC 8410 section 10.1 and 10.3 examples: the PEM forms of one key pair.
constexpr char kRfc8410PublicPem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n"
    "-----END PUBLIC KEY-----\n";
constexpr char kRfc8410PrivatePem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n"
    "-----END PRIVATE KEY-----\n";
constexpr char kRfc8410PublicHex[] =
    "19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1";
constexpr char kRfc8410SeedHex[] =
    "d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842";

TEST(Ed25519PemTest, PublicFromPemKnownAnswer) {
  absl::StatusOr<Ed25519PublicKey> pub = Ed25519PublicKey::FromPem(kRfc8410PublicPem);
  ASSERT_TRUE(pub.ok()) << pub.status();
  EXPECT_EQ(absl::BytesToHexString(pub->Raw()), kRfc8410PublicHex);
  EXPECT_EQ(pub->KeyId(), Sha256Hex(absl::HexStringToBytes(kRfc8410PublicHex)));
  EXPECT_EQ(pub->ToPem(), kRfc8410PublicPem);
}

TEST(Ed25519PemTest, PrivateFromPemKnownAnswer) {
  absl::StatusOr<Ed25519PrivateKey> key = Ed25519PrivateKey::FromPem(kRfc8410PrivatePem);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(absl::BytesToHexString(key->PublicKey().Raw()), kRfc8410PublicHex);
  EXPECT_EQ(key->ToPem(), kRfc8410PrivatePem);

  absl::StatusOr<Ed25519PrivateKey> from_seed =
      Ed25519PrivateKey::FromSeed(absl::HexStringToBytes(kRfc8410SeedHex));
  ASSERT_TRUE(from_seed.ok()) << from_seed.status();
  EXPECT_EQ(from_seed->ToPem(), kRfc8410PrivatePem);
}

TEST(Ed25519PemTest, GeneratedKeyRoundTrips) {
  absl::StatusOr<Ed25519PrivateKey> key = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok()) << key.status();

  const std::string private_pem = key->ToPem();
  EXPECT_THAT(private_pem, HasSubstr("-----BEGIN PRIVATE KEY-----"));
  absl::StatusOr<Ed25519PrivateKey> reloaded = Ed25519PrivateKey::FromPem(private_pem);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_EQ(reloaded->PublicKey().Raw(), key->PublicKey().Raw());
  // Ed25519 is deterministic, so the same seed must give the same signature.
  EXPECT_EQ(*reloaded->Sign("m"), *key->Sign("m"));

  const std::string public_pem = key->PublicKey().ToPem();
  EXPECT_THAT(public_pem, HasSubstr("-----BEGIN PUBLIC KEY-----"));
  absl::StatusOr<Ed25519PublicKey> pub = Ed25519PublicKey::FromPem(public_pem);
  ASSERT_TRUE(pub.ok()) << pub.status();
  EXPECT_EQ(pub->Raw(), key->PublicKey().Raw());
  EXPECT_EQ(pub->KeyId(), key->PublicKey().KeyId());
}

TEST(Ed25519Test, GeneratedKeysSignAndVerify) {
  absl::StatusOr<Ed25519PrivateKey> a = Ed25519PrivateKey::Generate();
  absl::StatusOr<Ed25519PrivateKey> b = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->PublicKey().Raw(), b->PublicKey().Raw());
  EXPECT_NE(a->PublicKey().KeyId(), b->PublicKey().KeyId());
  EXPECT_TRUE(IsSha256Hex(a->PublicKey().KeyId()));

  absl::StatusOr<std::string> sig = a->Sign("release 1.2.3");
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_EQ(sig->size(), 64u);
  EXPECT_TRUE(a->PublicKey().Verify("release 1.2.3", *sig));
  EXPECT_FALSE(b->PublicKey().Verify("release 1.2.3", *sig));
  EXPECT_FALSE(a->PublicKey().Verify("release 1.2.4", *sig));
}

TEST(Ed25519Test, VerifyRejectsDegenerateSignatures) {
  absl::StatusOr<Ed25519PrivateKey> key = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  EXPECT_FALSE(key->PublicKey().Verify("m", ""));
  EXPECT_FALSE(key->PublicKey().Verify("m", std::string(64, '\0')));
  EXPECT_FALSE(key->PublicKey().Verify("m", std::string(64, '\xff')));
}

TEST(Ed25519Test, FromRawRejectsWrongLength) {
  for (size_t n : {0, 31, 33, 64}) {
    absl::StatusOr<Ed25519PublicKey> pub = Ed25519PublicKey::FromRaw(std::string(n, 'a'));
    EXPECT_EQ(pub.status().code(), absl::StatusCode::kInvalidArgument) << n;
  }
}

TEST(Ed25519Test, FromSeedRejectsWrongLength) {
  for (size_t n : {0, 31, 33, 64}) {
    absl::StatusOr<Ed25519PrivateKey> key = Ed25519PrivateKey::FromSeed(std::string(n, 'a'));
    EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument) << n;
    EXPECT_THAT(std::string(key.status().message()), HasSubstr("32 bytes"));
  }
}

// --- PEM inputs that are not Ed25519 keys ---

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioDeleter {
  void operator()(BIO* p) const { BIO_free_all(p); }
};

std::string BioString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

// RsaPems returns {public PEM, private PEM} of a fresh RSA key.
std::pair<std::string, std::string> RsaPems() {
  std::unique_ptr<EVP_PKEY, PkeyDeleter> rsa(EVP_RSA_gen(2048));
  EXPECT_NE(rsa, nullptr);
  std::unique_ptr<BIO, BioDeleter> pub(BIO_new(BIO_s_mem()));
  std::unique_ptr<BIO, BioDeleter> priv(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_PUBKEY(pub.get(), rsa.get()), 1);
  EXPECT_EQ(PEM_write_bio_PrivateKey(priv.get(), rsa.get(), nullptr, nullptr, 0, nullptr, nullptr),
            1);
  return {BioString(pub.get()), BioString(priv.get())};
}

TEST(Ed25519PemTest, RejectsRsaKeys) {
  const auto [public_pem, private_pem] = RsaPems();
  absl::StatusOr<Ed25519PublicKey> pub = Ed25519PublicKey::FromPem(public_pem);
  EXPECT_EQ(pub.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(pub.status().message()), HasSubstr("RSA"));
  EXPECT_THAT(std::string(pub.status().message()), HasSubstr("not Ed25519"));

  absl::StatusOr<Ed25519PrivateKey> key = Ed25519PrivateKey::FromPem(private_pem);
  EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(key.status().message()), HasSubstr("not Ed25519"));
}

TEST(Ed25519PemTest, RejectsGarbage) {
  for (const char* pem :
       {"", "garbage", "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmE\n-----END PUBLIC KEY-----\n"}) {
    EXPECT_EQ(Ed25519PublicKey::FromPem(pem).status().code(), absl::StatusCode::kInvalidArgument)
        << pem;
    EXPECT_EQ(Ed25519PrivateKey::FromPem(pem).status().code(), absl::StatusCode::kInvalidArgument)
        << pem;
  }
}

TEST(Ed25519PemTest, RejectsSwappedKinds) {
  absl::StatusOr<Ed25519PublicKey> pub = Ed25519PublicKey::FromPem(kRfc8410PrivatePem);
  EXPECT_EQ(pub.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(pub.status().message()), HasSubstr("BEGIN PUBLIC KEY"));
  absl::StatusOr<Ed25519PrivateKey> key = Ed25519PrivateKey::FromPem(kRfc8410PublicPem);
  EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(key.status().message()), HasSubstr("BEGIN PRIVATE KEY"));
}

TEST(Ed25519PemTest, RejectsEncryptedPrivateKeyWithoutPrompting) {
  std::unique_ptr<EVP_PKEY, PkeyDeleter> pkey(EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr,
      reinterpret_cast<const unsigned char*>("0123456789abcdef0123456789abcdef"), 32));
  ASSERT_NE(pkey, nullptr);
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new(BIO_s_mem()));
  char passphrase[] = "secret";
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(bio.get(), pkey.get(), EVP_aes_256_cbc(), passphrase,
                                          sizeof(passphrase) - 1, nullptr, nullptr),
            1);
  const std::string encrypted = BioString(bio.get());
  ASSERT_THAT(encrypted, HasSubstr("ENCRYPTED PRIVATE KEY"));
  // Would block on the terminal if OpenSSL's default passphrase prompt were used.
  EXPECT_EQ(Ed25519PrivateKey::FromPem(encrypted).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Ed25519PemTest, RejectsOversizedInput) {
  const std::string huge = std::string(70 * 1024, '\n') + kRfc8410PublicPem;
  absl::StatusOr<Ed25519PublicKey> pub = Ed25519PublicKey::FromPem(huge);
  EXPECT_EQ(pub.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(pub.status().message()), HasSubstr("bytes"));
}

}  // namespace
}  // namespace ringwarden

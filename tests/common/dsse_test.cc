#include "common/dsse.h"

#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/ed25519.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace ringwarden {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

constexpr absl::string_view kType = "application/vnd.example+json";

// TestKey derives a fixed key from one repeated seed byte, so failures reproduce.
Ed25519PrivateKey TestKey(char seed_byte) {
  absl::StatusOr<Ed25519PrivateKey> key = Ed25519PrivateKey::FromSeed(std::string(32, seed_byte));
  EXPECT_TRUE(key.ok()) << key.status();
  return *std::move(key);
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

// TempDir is a private directory removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "ringwarden_dsse_XXXXXX";
    const char* made = ::mkdtemp(&pattern[0]);
    EXPECT_NE(made, nullptr) << "mkdtemp " << pattern;
    path_ = made != nullptr ? made : "";
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(absl::string_view name) const { return absl::StrCat(path_, "/", name); }
  std::string Write(absl::string_view name, absl::string_view contents) const {
    const std::string file = File(name);
    std::ofstream out(file, std::ios::binary);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    EXPECT_TRUE(out.good()) << file;
    return file;
  }
  std::string Read(absl::string_view name) const {
    std::ifstream in(File(name), std::ios::binary);
    EXPECT_TRUE(in.good()) << File(name);
    std::ostringstream contents;
    contents << in.rdbuf();
    return contents.str();
  }

 private:
  std::string path_;
};

// --- PreAuthEncoding ---

TEST(PreAuthEncodingTest, KnownAnswerFromDsseSpec) {
  EXPECT_EQ(PreAuthEncoding("http://example.com/HelloWorld", "hello world"),
            "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
}

TEST(PreAuthEncodingTest, EmptyFields) { EXPECT_EQ(PreAuthEncoding("", ""), "DSSEv1 0  0 "); }

TEST(PreAuthEncodingTest, LengthsCountBytesIncludingNulAndSpaces) {
  const std::string payload("a b\0c", 5);
  EXPECT_EQ(PreAuthEncoding("t y", payload), std::string("DSSEv1 3 t y 5 a b\0c", 20));
}

TEST(PreAuthEncodingTest, TypeAndPayloadBoundaryIsUnambiguous) {
  // Without lengths these two would encode to the same bytes.
  EXPECT_NE(PreAuthEncoding("a b", "c"), PreAuthEncoding("a", "b c"));
}

// --- SignEnvelope / EncodeEnvelopeJson / ParseEnvelopeJson ---

TEST(DsseEnvelopeTest, SignProducesOneSignaturePerKey) {
  const Ed25519PrivateKey a = TestKey('a');
  const Ed25519PrivateKey b = TestKey('b');
  absl::StatusOr<DsseEnvelope> env = SignEnvelope(kType, "payload", {&a, &b});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->payload_type, kType);
  EXPECT_EQ(env->payload, "payload");
  ASSERT_EQ(env->signatures.size(), 2u);
  EXPECT_EQ(env->signatures[0].keyid, a.PublicKey().KeyId());
  EXPECT_EQ(env->signatures[1].keyid, b.PublicKey().KeyId());
  const std::string pae = PreAuthEncoding(kType, "payload");
  EXPECT_TRUE(a.PublicKey().Verify(pae, env->signatures[0].sig));
  EXPECT_TRUE(b.PublicKey().Verify(pae, env->signatures[1].sig));
}

TEST(DsseEnvelopeTest, SignRejectsBadArguments) {
  const Ed25519PrivateKey a = TestKey('a');
  EXPECT_EQ(SignEnvelope(kType, "p", {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SignEnvelope(kType, "p", {&a, nullptr}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SignEnvelope("bad\xff type", "p", {&a}).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<const Ed25519PrivateKey*> too_many(17, &a);
  EXPECT_EQ(SignEnvelope(kType, "p", too_many).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(DsseEnvelopeTest, JsonRoundTripKeepsExactBytes) {
  const Ed25519PrivateKey a = TestKey('a');
  const Ed25519PrivateKey b = TestKey('b');
  std::string payload("\x00\x01\xff{\"not\": \"json\"}\n", 19);
  absl::StatusOr<DsseEnvelope> env = SignEnvelope(kManifestPayloadType, payload, {&a, &b});
  ASSERT_TRUE(env.ok()) << env.status();

  const std::string json = EncodeEnvelopeJson(*env);
  absl::StatusOr<DsseEnvelope> parsed = ParseEnvelopeJson(json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->payload_type, env->payload_type);
  EXPECT_EQ(parsed->payload, payload);
  ASSERT_EQ(parsed->signatures.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(parsed->signatures[i].keyid, env->signatures[i].keyid);
    EXPECT_EQ(parsed->signatures[i].sig, env->signatures[i].sig);
  }
  EXPECT_EQ(EncodeEnvelopeJson(*parsed), json);
}

TEST(DsseEnvelopeTest, JsonUsesStandardDsseFieldsAndPaddedBase64) {
  DsseEnvelope env{"t", "ab", {DsseSignature{"k1", "\xfb\xff"}}};
  const Json doc = Json::parse(EncodeEnvelopeJson(env));
  EXPECT_EQ(doc.size(), 3u);
  EXPECT_EQ(doc.at("payload"), "YWI=");
  EXPECT_EQ(doc.at("payloadType"), "t");
  ASSERT_EQ(doc.at("signatures").size(), 1u);
  EXPECT_EQ(doc.at("signatures")[0].at("keyid"), "k1");
  EXPECT_EQ(doc.at("signatures")[0].at("sig"), "+/8=");  // standard alphabet, not URL-safe
}

// Valid is a well-formed envelope document that tests break one piece at a time.
Json Valid() {
  return Json{{"payload", "aGVsbG8="},
              {"payloadType", "t"},
              {"signatures", Json::array({Json{{"keyid", "k"}, {"sig", "c2ln"}}})}};
}

absl::Status ParseStatus(const Json& doc) { return ParseEnvelopeJson(doc.dump()).status(); }

void ExpectInvalid(const Json& doc, absl::string_view message_part) {
  const absl::Status status = ParseStatus(doc);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << doc.dump();
  EXPECT_THAT(Message(status), HasSubstr(std::string(message_part))) << doc.dump();
}

TEST(ParseEnvelopeJsonTest, AcceptsValidDocument) {
  absl::StatusOr<DsseEnvelope> env = ParseEnvelopeJson(Valid().dump());
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->payload, "hello");
  EXPECT_EQ(env->payload_type, "t");
  ASSERT_EQ(env->signatures.size(), 1u);
  EXPECT_EQ(env->signatures[0].keyid, "k");
  EXPECT_EQ(env->signatures[0].sig, "sig");
}

TEST(ParseEnvelopeJsonTest, KeyidIsOptional) {
  Json doc = Valid();
  doc["signatures"][0].erase("keyid");
  absl::StatusOr<DsseEnvelope> env = ParseEnvelopeJson(doc.dump());
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->signatures[0].keyid, "");
}

TEST(ParseEnvelopeJsonTest, AcceptsUrlSafeBase64AsDsseAllows) {
  Json doc = Valid();
  doc["payload"] = "-_8";  // URL-safe, unpadded form of fb ff
  absl::StatusOr<DsseEnvelope> env = ParseEnvelopeJson(doc.dump());
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->payload, "\xfb\xff");
}

TEST(ParseEnvelopeJsonTest, IgnoresUnknownFields) {
  Json doc = Valid();
  doc["extension"] = {{"x", 1}};
  doc["signatures"][0]["comment"] = "hi";
  EXPECT_TRUE(ParseStatus(doc).ok());
}

TEST(ParseEnvelopeJsonTest, RejectsTruncatedJson) {
  const std::string json = Valid().dump();
  for (size_t len : {size_t{0}, size_t{1}, json.size() / 2, json.size() - 1}) {
    absl::Status status = ParseEnvelopeJson(json.substr(0, len)).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << len;
    EXPECT_THAT(Message(status), HasSubstr("not valid JSON")) << len;
  }
}

TEST(ParseEnvelopeJsonTest, RejectsTrailingGarbage) {
  EXPECT_EQ(ParseEnvelopeJson(Valid().dump() + "{}").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ParseEnvelopeJsonTest, SizeLimitIsInclusive) {
  const std::string json = Valid().dump();
  // Trailing whitespace is valid JSON, so padding reaches the limit exactly.
  std::string at_limit = json + std::string(kMaxEnvelopeJsonBytes - json.size(), ' ');
  EXPECT_TRUE(ParseEnvelopeJson(at_limit).ok());
  absl::Status status = ParseEnvelopeJson(at_limit + " ").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), HasSubstr("over the limit"));
}

TEST(ParseEnvelopeJsonTest, RejectsOversizedPayload) {
  Json doc = Valid();
  doc["payload"] = absl::Base64Escape(std::string(kMaxEnvelopeJsonBytes, 'x'));
  ExpectInvalid(doc, "over the limit");
}

TEST(ParseEnvelopeJsonTest, RejectsNonObject) {
  for (const char* json : {"[]", "\"envelope\"", "42", "null", "true"}) {
    absl::Status status = ParseEnvelopeJson(json).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << json;
    EXPECT_THAT(Message(status), HasSubstr("must be an object")) << json;
  }
}

TEST(ParseEnvelopeJsonTest, RejectsMissingFields) {
  for (const char* field : {"payload", "payloadType", "signatures"}) {
    Json doc = Valid();
    doc.erase(field);
    ExpectInvalid(doc, absl::StrCat("missing \"", field, "\""));
  }
}

TEST(ParseEnvelopeJsonTest, RejectsWronglyTypedFields) {
  for (const char* field : {"payload", "payloadType"}) {
    for (const Json& value : {Json(1), Json(nullptr), Json::array(), Json::object()}) {
      Json doc = Valid();
      doc[field] = value;
      ExpectInvalid(doc, absl::StrCat("\"", field, "\" must be a string"));
    }
  }
  for (const Json& value : {Json("sigs"), Json(nullptr), Json::object()}) {
    Json doc = Valid();
    doc["signatures"] = value;
    ExpectInvalid(doc, "\"signatures\" must be an array");
  }
}

TEST(ParseEnvelopeJsonTest, RejectsEmptySignatures) {
  Json doc = Valid();
  doc["signatures"] = Json::array();
  ExpectInvalid(doc, "envelope has no signatures");
}

TEST(ParseEnvelopeJsonTest, RejectsMalformedSignatureEntries) {
  Json doc = Valid();
  doc["signatures"][0] = "c2ln";
  ExpectInvalid(doc, "signatures[0] must be an object");

  doc = Valid();
  doc["signatures"][0].erase("sig");
  ExpectInvalid(doc, "signatures[0] is missing \"sig\"");

  doc = Valid();
  doc["signatures"][0]["sig"] = 7;
  ExpectInvalid(doc, "\"sig\" must be a string");

  doc = Valid();
  doc["signatures"][0]["keyid"] = 7;
  ExpectInvalid(doc, "\"keyid\" must be a string");

  doc = Valid();
  doc["signatures"][0]["sig"] = "";
  ExpectInvalid(doc, "sig is empty");

  doc = Valid();
  doc["signatures"].push_back(Json{{"keyid", "k2"}});
  ExpectInvalid(doc, "signatures[1] is missing \"sig\"");
}

TEST(ParseEnvelopeJsonTest, RejectsBadBase64) {
  for (const char* bad : {"not base64!", "aGVsbG8=x", "a", "aGV*bG8="}) {
    Json doc = Valid();
    doc["payload"] = bad;
    ExpectInvalid(doc, "envelope payload is not valid base64");

    doc = Valid();
    doc["signatures"][0]["sig"] = bad;
    ExpectInvalid(doc, "signatures[0].sig is not valid base64");
  }
}

TEST(ParseEnvelopeJsonTest, SignatureCountLimit) {
  Json doc = Valid();
  doc["signatures"] = Json::array();
  for (int i = 0; i < 16; ++i) {
    doc["signatures"].push_back(Json{{"keyid", absl::StrCat("k", i)}, {"sig", "c2ln"}});
  }
  EXPECT_TRUE(ParseStatus(doc).ok());
  doc["signatures"].push_back(Json{{"keyid", "k16"}, {"sig", "c2ln"}});
  ExpectInvalid(doc, "17 signatures; at most 16");
}

TEST(ParseEnvelopeJsonTest, RejectsDuplicateKeys) {
  absl::Status status =
      ParseEnvelopeJson(R"({"payload":"aGVsbG8=","payload":"ZXZpbA==","payloadType":"t",)"
                        R"("signatures":[{"sig":"c2ln"}]})")
          .status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), HasSubstr("repeats the key \"payload\""));

  status = ParseEnvelopeJson(R"({"payload":"aGVsbG8=","payloadType":"t",)"
                             R"("signatures":[{"sig":"c2ln","sig":"c2ln"}]})")
               .status();
  EXPECT_THAT(Message(status), HasSubstr("repeats the key \"sig\""));

  // The same key in sibling objects is fine.
  EXPECT_TRUE(ParseEnvelopeJson(R"({"payload":"aGVsbG8=","payloadType":"t",)"
                                R"("signatures":[{"sig":"c2ln"},{"sig":"c2ln"}]})")
                  .ok());
}

// --- TrustedKeys::Verify ---

class VerifyTest : public ::testing::Test {
 protected:
  VerifyTest() : a_(TestKey('a')), b_(TestKey('b')), c_(TestKey('c')), untrusted_(TestKey('u')) {}

  DsseEnvelope Sign(std::vector<const Ed25519PrivateKey*> keys,
                    absl::string_view payload = "payload") {
    absl::StatusOr<DsseEnvelope> env = SignEnvelope(kType, payload, keys);
    EXPECT_TRUE(env.ok()) << env.status();
    return *std::move(env);
  }
  TrustedKeys Trust(std::vector<const Ed25519PrivateKey*> keys, int threshold = 1) {
    std::vector<Ed25519PublicKey> pubs;
    for (const Ed25519PrivateKey* key : keys) {
      pubs.push_back(key->PublicKey());
    }
    return TrustedKeys(std::move(pubs), threshold);
  }

  Ed25519PrivateKey a_, b_, c_, untrusted_;
};

TEST_F(VerifyTest, AcceptsTrustedSignature) {
  absl::StatusOr<VerifiedEnvelope> v = Trust({&a_, &b_}).Verify(Sign({&a_}), kType);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->payload, "payload");
  EXPECT_EQ(v->payload_type, kType);
  EXPECT_THAT(v->key_ids, ElementsAre(a_.PublicKey().KeyId()));
}

TEST_F(VerifyTest, AcceptsAfterJsonRoundTrip) {
  absl::StatusOr<DsseEnvelope> parsed = ParseEnvelopeJson(EncodeEnvelopeJson(Sign({&a_})));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(Trust({&a_}).Verify(*parsed, kType).ok());
}

TEST_F(VerifyTest, EmptyKeyidTriesEveryTrustedKey) {
  DsseEnvelope env = Sign({&b_});
  env.signatures[0].keyid.clear();
  absl::StatusOr<VerifiedEnvelope> v = Trust({&a_, &b_, &c_}).Verify(env, kType);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_THAT(v->key_ids, ElementsAre(b_.PublicKey().KeyId()));
}

TEST_F(VerifyTest, EmptyKeyidFromUntrustedKeyIsDenied) {
  DsseEnvelope env = Sign({&untrusted_});
  env.signatures[0].keyid.clear();
  absl::Status status = Trust({&a_}).Verify(env, kType).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Message(status), HasSubstr("(no keyid): no trusted key verifies it"));
}

TEST_F(VerifyTest, UntrustedKeyIsDeniedAndNamed) {
  absl::Status status = Trust({&a_}).Verify(Sign({&untrusted_}), kType).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Message(status), HasSubstr(untrusted_.PublicKey().KeyId()));
  EXPECT_THAT(Message(status), HasSubstr("not trusted"));
  EXPECT_THAT(Message(status), HasSubstr("0 distinct trusted key(s), 1 required"));
}

TEST_F(VerifyTest, WrongKeyBehindTrustedKeyidIsDenied) {
  // Signed by an outsider who claims to be a trusted key.
  DsseEnvelope env = Sign({&untrusted_});
  env.signatures[0].keyid = a_.PublicKey().KeyId();
  absl::Status status = Trust({&a_}).Verify(env, kType).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Message(status), HasSubstr(a_.PublicKey().KeyId()));
  EXPECT_THAT(Message(status), HasSubstr("signature is invalid"));
}

TEST_F(VerifyTest, TamperedPayloadIsDenied) {
  DsseEnvelope env = Sign({&a_});
  env.payload = "paylOad";
  absl::Status status = Trust({&a_}).Verify(env, kType).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Message(status), HasSubstr("signature is invalid"));

  env.payload = "payload ";
  EXPECT_EQ(Trust({&a_}).Verify(env, kType).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(VerifyTest, TamperedPayloadTypeIsRejected) {
  DsseEnvelope env = Sign({&a_});
  env.payload_type = "application/vnd.other+json";
  // Against the expected type it is a mismatch...
  absl::Status status = Trust({&a_}).Verify(env, kType).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), HasSubstr("application/vnd.other+json"));
  EXPECT_THAT(Message(status), HasSubstr(std::string(kType)));
  // ...and even a caller expecting the new type sees that the signature does not cover it.
  EXPECT_EQ(Trust({&a_}).Verify(env, env.payload_type).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(VerifyTest, TamperedSignatureIsDenied) {
  DsseEnvelope env = Sign({&a_});
  env.signatures[0].sig[10] ^= 0x04;
  EXPECT_EQ(Trust({&a_}).Verify(env, kType).status().code(), absl::StatusCode::kPermissionDenied);
  env.signatures[0].sig.resize(63);
  EXPECT_EQ(Trust({&a_}).Verify(env, kType).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(VerifyTest, NoSignaturesIsInvalid) {
  DsseEnvelope env = Sign({&a_});
  env.signatures.clear();
  absl::Status status = Trust({&a_}).Verify(env, kType).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), HasSubstr("no signatures"));
}

TEST_F(VerifyTest, ThresholdTwoWithOneSignatureIsDenied) {
  absl::Status status = Trust({&a_, &b_, &c_}, 2).Verify(Sign({&a_}), kType).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Message(status), HasSubstr("1 distinct trusted key(s), 2 required"));
  EXPECT_THAT(Message(status), HasSubstr("verified: " + a_.PublicKey().KeyId()));
}

TEST_F(VerifyTest, ThresholdTwoWithTwoDistinctKeysIsAccepted) {
  absl::StatusOr<VerifiedEnvelope> v = Trust({&a_, &b_, &c_}, 2).Verify(Sign({&c_, &a_}), kType);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_THAT(v->key_ids, ElementsAre(c_.PublicKey().KeyId(), a_.PublicKey().KeyId()));
}

TEST_F(VerifyTest, ThresholdTwoCountsTrustedKeysOnly) {
  absl::Status status = Trust({&a_, &b_}, 2).Verify(Sign({&a_, &untrusted_}), kType).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Message(status), HasSubstr(untrusted_.PublicKey().KeyId()));
}

TEST_F(VerifyTest, SameKeySigningTwiceCountsOnce) {
  DsseEnvelope env = Sign({&a_, &a_});
  const TrustedKeys trusted = Trust({&a_, &b_}, 2);
  absl::Status status = trusted.Verify(env, kType).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Message(status), HasSubstr("counted once"));

  // Hiding the repeat behind an empty keyid does not help.
  env.signatures[1].keyid.clear();
  EXPECT_EQ(trusted.Verify(env, kType).status().code(), absl::StatusCode::kPermissionDenied);

  // At threshold 1 the repeat is harmless and reported once in key_ids.
  absl::StatusOr<VerifiedEnvelope> v = Trust({&a_}).Verify(env, kType);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_THAT(v->key_ids, ElementsAre(a_.PublicKey().KeyId()));
}

TEST_F(VerifyTest, OneGoodSignatureAmongBadOnesIsEnoughAtThresholdOne) {
  DsseEnvelope env = Sign({&untrusted_, &a_});
  env.signatures.push_back(DsseSignature{"ffff", "junk"});
  EXPECT_TRUE(Trust({&a_}).Verify(env, kType).ok());
}

TEST_F(VerifyTest, TooManySignaturesIsInvalid) {
  DsseEnvelope env = Sign({&a_});
  env.signatures.resize(17, env.signatures[0]);
  EXPECT_EQ(Trust({&a_}).Verify(env, kType).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(VerifyTest, UnprintableKeyidIsEscapedInMessage) {
  DsseEnvelope env = Sign({&a_});
  env.signatures[0].keyid = std::string("evil\n\x01") + std::string(200, 'x');
  absl::Status status = Trust({&a_}).Verify(env, kType).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Message(status), HasSubstr("evil\\n\\x01"));
  EXPECT_THAT(Message(status), Not(HasSubstr(std::string(100, 'x'))));
}

TEST_F(VerifyTest, MisconfiguredTrustFailsClosed) {
  const DsseEnvelope env = Sign({&a_});
  EXPECT_EQ(TrustedKeys().Verify(env, kType).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Trust({&a_}, 0).Verify(env, kType).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Trust({&a_}, -1).Verify(env, kType).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Trust({&a_}, 2).Verify(env, kType).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(VerifyTest, ConstructorCollapsesRepeatedKeys) {
  const TrustedKeys trusted = Trust({&a_, &a_, &b_}, 2);
  EXPECT_EQ(trusted.size(), 2u);
  EXPECT_EQ(trusted.threshold(), 2);
}

// --- TrustedKeys::LoadPemFiles ---

class LoadPemFilesTest : public VerifyTest {
 protected:
  std::string WriteKey(absl::string_view name, const Ed25519PrivateKey& key) {
    return dir_.Write(name, key.PublicKey().ToPem());
  }
  TempDir dir_;
};

TEST_F(LoadPemFilesTest, LoadsKeysAndThreshold) {
  absl::StatusOr<TrustedKeys> trusted =
      TrustedKeys::LoadPemFiles({WriteKey("a.pem", a_), WriteKey("b.pem", b_)}, 2);
  ASSERT_TRUE(trusted.ok()) << trusted.status();
  EXPECT_EQ(trusted->size(), 2u);
  EXPECT_EQ(trusted->threshold(), 2);
  std::vector<std::string> expected = {a_.PublicKey().KeyId(), b_.PublicKey().KeyId()};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(trusted->KeyIds(), expected);
  EXPECT_TRUE(trusted->Verify(Sign({&a_, &b_}), kType).ok());
  EXPECT_EQ(trusted->Verify(Sign({&a_}), kType).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(LoadPemFilesTest, DefaultThresholdIsOne) {
  absl::StatusOr<TrustedKeys> trusted = TrustedKeys::LoadPemFiles({WriteKey("a.pem", a_)});
  ASSERT_TRUE(trusted.ok()) << trusted.status();
  EXPECT_EQ(trusted->threshold(), 1);
}

TEST_F(LoadPemFilesTest, MissingFileIsNotFound) {
  const std::string missing = dir_.File("missing.pem");
  absl::Status status = TrustedKeys::LoadPemFiles({WriteKey("a.pem", a_), missing}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(status), HasSubstr(missing));
}

TEST_F(LoadPemFilesTest, BadPemNamesTheFile) {
  const std::string bad = dir_.Write("bad.pem", "not a key\n");
  absl::Status status = TrustedKeys::LoadPemFiles({WriteKey("a.pem", a_), bad}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), HasSubstr(bad));
}

TEST_F(LoadPemFilesTest, PrivateKeyFileIsRejected) {
  const std::string priv = dir_.Write("priv.pem", a_.ToPem());
  absl::Status status = TrustedKeys::LoadPemFiles({priv}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), HasSubstr(priv));
}

TEST_F(LoadPemFilesTest, DirectoryIsNotAKeyFile) {
  EXPECT_FALSE(TrustedKeys::LoadPemFiles({dir_.path()}).ok());
}

TEST_F(LoadPemFilesTest, EmptyListIsInvalid) {
  EXPECT_EQ(TrustedKeys::LoadPemFiles({}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(LoadPemFilesTest, ThresholdOutOfRangeIsInvalid) {
  const std::vector<std::string> paths = {WriteKey("a.pem", a_), WriteKey("b.pem", b_)};
  for (int threshold : {-1, 0, 3}) {
    absl::Status status = TrustedKeys::LoadPemFiles(paths, threshold).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << threshold;
    EXPECT_THAT(Message(status), HasSubstr("between 1 and the number of trusted keys (2)"));
  }
}

TEST_F(LoadPemFilesTest, SameKeyInTwoFilesIsInvalid) {
  const std::string first = WriteKey("a.pem", a_);
  const std::string second = WriteKey("a-copy.pem", a_);
  absl::Status status = TrustedKeys::LoadPemFiles({first, second}, 2).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), HasSubstr(first));
  EXPECT_THAT(Message(status), HasSubstr(second));
  EXPECT_THAT(Message(status), HasSubstr("same key"));
}

// --- Interoperability with stock OpenSSL tooling ---

// RunShell runs `script` with /bin/sh and reports whether it exited 0.
bool RunShell(const std::string& script) {
  const int rc = std::system(script.c_str());
  return rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
}

TEST(DsseInteropTest, EnvelopeMadeWithOpensslCliVerifies) {
  TempDir dir;
  const std::string payload("manifest \x00\xff bytes\n", 18);
  dir.Write("payload.bin", payload);
  // Key, PAE, signature, key id and envelope all come from shell tools, not from our code.
  const std::string script = absl::StrCat(
      "set -e; cd '", dir.path(), "'; TYPE='", kManifestPayloadType, "'\n",
      "openssl genpkey -algorithm ed25519 -out key.pem\n",
      "openssl pkey -in key.pem -pubout -out pub.pem\n",
      "{ printf 'DSSEv1 %s %s %s ' \"${#TYPE}\" \"$TYPE\" \"$(wc -c < payload.bin | tr -d ' ')\"; "
      "cat payload.bin; } > pae.bin\n",
      "openssl pkeyutl -sign -rawin -inkey key.pem -in pae.bin -out sig.bin\n",
      "openssl pkey -pubin -in pub.pem -outform DER | tail -c 32 | sha256sum | cut -d' ' -f1 "
      "| tr -d '\\n' > keyid.txt\n",
      "printf '{\"payloadType\": \"%s\", \"payload\": \"%s\", \"signatures\": "
      "[{\"keyid\": \"%s\", \"sig\": \"%s\"}]}' \"$TYPE\" \"$(base64 -w0 payload.bin)\" "
      "\"$(cat keyid.txt)\" \"$(base64 -w0 sig.bin)\" > envelope.json\n");
  ASSERT_TRUE(RunShell(script)) << script;

  EXPECT_EQ(dir.Read("pae.bin"), PreAuthEncoding(kManifestPayloadType, payload));

  absl::StatusOr<DsseEnvelope> env = ParseEnvelopeJson(dir.Read("envelope.json"));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->payload, payload);
  absl::StatusOr<TrustedKeys> trusted = TrustedKeys::LoadPemFiles({dir.File("pub.pem")});
  ASSERT_TRUE(trusted.ok()) << trusted.status();
  absl::StatusOr<VerifiedEnvelope> verified = trusted->Verify(*env, kManifestPayloadType);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->payload, payload);
  EXPECT_THAT(verified->key_ids, ElementsAre(dir.Read("keyid.txt")));

  // The other direction: the openssl-made private key loads, signs the same
  // deterministic bytes, and openssl verifies what we sign.
  absl::StatusOr<Ed25519PrivateKey> key = Ed25519PrivateKey::FromPem(dir.Read("key.pem"));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->PublicKey().KeyId(), dir.Read("keyid.txt"));
  absl::StatusOr<DsseEnvelope> ours = SignEnvelope(kManifestPayloadType, payload, {&*key});
  ASSERT_TRUE(ours.ok()) << ours.status();
  EXPECT_EQ(ours->signatures[0].sig, dir.Read("sig.bin"));
  dir.Write("our_sig.bin", ours->signatures[0].sig);
  dir.Write("our_key.pem", key->ToPem());
  dir.Write("our_pub.pem", key->PublicKey().ToPem());
  ASSERT_TRUE(
      RunShell(absl::StrCat("set -e; cd '", dir.path(), "'\n",
                            "openssl pkeyutl -verify -rawin -pubin -inkey our_pub.pem -in pae.bin "
                            "-sigfile our_sig.bin > /dev/null\n",
                            "openssl pkey -in our_key.pem -pubout | cmp -s - pub.pem\n")));
}

TEST(DsseInteropTest, EncryptedOpensslKeyIsRejectedWithoutPrompting) {
  TempDir dir;
  ASSERT_TRUE(RunShell(absl::StrCat("cd '", dir.path(),
                                    "' && openssl genpkey -algorithm ed25519 -aes-256-cbc "
                                    "-pass pass:secret -out enc.pem")));
  EXPECT_EQ(Ed25519PrivateKey::FromPem(dir.Read("enc.pem")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DsseInteropTest, OpensslRsaKeyFileIsRejected) {
  TempDir dir;
  ASSERT_TRUE(RunShell(
      absl::StrCat("cd '", dir.path(),
                   "' && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem "
                   "2>/dev/null && openssl pkey -in rsa.pem -pubout -out rsa_pub.pem")));
  absl::Status status = TrustedKeys::LoadPemFiles({dir.File("rsa_pub.pem")}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), HasSubstr("rsa_pub.pem"));
  EXPECT_THAT(Message(status), HasSubstr("not Ed25519"));
}

}  // namespace
}  // namespace ringwarden

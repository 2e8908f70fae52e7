#include "common/sha256.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <random>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace ringwarden {
namespace {

TEST(Sha256Test, DigestOfPartsIsTheDigestOfTheirConcatenation) {
  std::mt19937 gen(7);
  for (int round = 0; round < 200; ++round) {
    std::string whole(gen() % 300, '\0');
    for (char& c : whole) c = static_cast<char>(gen());
    // Three parts at random cuts, any of them possibly empty.
    size_t a = whole.empty() ? 0 : gen() % (whole.size() + 1);
    size_t b = whole.empty() ? 0 : gen() % (whole.size() + 1);
    if (a > b) std::swap(a, b);
    const absl::string_view v(whole);
    unsigned char digest[32];
    Sha256Of({v.substr(0, a), v.substr(a, b - a), v.substr(b)}, digest);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(digest), 32), Sha256(whole));
  }
  unsigned char empty[32];
  Sha256Of({}, empty);
  EXPECT_EQ(absl::BytesToHexString(std::string(reinterpret_cast<const char*>(empty), 32)),
            Sha256Hex(""));
}

TEST(Sha256Test, HexEqualsAcceptsOnlyTheExactLowercaseDigest) {
  const std::string hex = Sha256Hex("abc");
  EXPECT_TRUE(Sha256HexEquals("abc", hex));
  EXPECT_FALSE(Sha256HexEquals("abd", hex));
  EXPECT_FALSE(Sha256HexEquals("abc", absl::AsciiStrToUpper(hex)));
  EXPECT_FALSE(Sha256HexEquals("abc", hex.substr(0, 63)));
  EXPECT_FALSE(Sha256HexEquals("abc", hex + "0"));
  EXPECT_FALSE(Sha256HexEquals("abc", ""));
  for (size_t i = 0; i < hex.size(); ++i) {
    std::string off = hex;
    off[i] = off[i] == '0' ? '1' : '0';
    EXPECT_FALSE(Sha256HexEquals("abc", off)) << i;
  }
}

// Known answers from FIPS 180-2 appendix B and common reference values.
TEST(Sha256Test, EmptyInput) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256Test, Abc) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, TwoBlockMessage) {
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Test, HashesEmbeddedNulBytes) {
  EXPECT_EQ(Sha256Hex(std::string(1, '\0')),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
}

TEST(Sha256Test, RawDigestMatchesHex) {
  const std::string raw = Sha256("abc");
  ASSERT_EQ(raw.size(), 32u);
  EXPECT_EQ(absl::BytesToHexString(raw), Sha256Hex("abc"));
}

TEST(Sha256Test, IsSha256HexAcceptsOwnOutput) { EXPECT_TRUE(IsSha256Hex(Sha256Hex("anything"))); }

TEST(Sha256Test, IsSha256HexRejectsMalformed) {
  const std::string good = Sha256Hex("abc");
  EXPECT_FALSE(IsSha256Hex(""));
  EXPECT_FALSE(IsSha256Hex(good.substr(1)));        // 63 characters
  EXPECT_FALSE(IsSha256Hex(good + "0"));            // 65 characters
  EXPECT_FALSE(IsSha256Hex("g" + good.substr(1)));  // not hex
  std::string upper = good;
  upper[0] = 'B';
  EXPECT_FALSE(IsSha256Hex(upper));  // ids are lowercase only
  std::string with_nul = good;
  with_nul[10] = '\0';
  EXPECT_FALSE(IsSha256Hex(with_nul));
}

std::string Mac(const HmacSha256Key& key, absl::string_view data) {
  unsigned char out[32];
  key.Mac(data, out);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(out), 32));
}

// RFC 4231 test cases 1, 2, 4, 6 and 7 (6 and 7: a key longer than a block, hashed first).
TEST(HmacSha256Test, Rfc4231KnownAnswers) {
  EXPECT_EQ(Mac(HmacSha256Key(std::string(20, '\x0b')), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(Mac(HmacSha256Key("Jefe"), "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  std::string key4;
  for (int i = 1; i <= 25; ++i) {
    key4.push_back(static_cast<char>(i));
  }
  EXPECT_EQ(Mac(HmacSha256Key(key4), std::string(50, '\xcd')),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
  const std::string long_key(131, '\xaa');
  EXPECT_EQ(Mac(HmacSha256Key(long_key), "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  EXPECT_EQ(Mac(HmacSha256Key(long_key),
                "This is a test using a larger than block-size key and a larger than block-size "
                "data. The key needs to be hashed before being used by the HMAC algorithm."),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

// Against OpenSSL's own HMAC for keys and messages of every length around the block size, and
// one prepared key used for many messages.
TEST(HmacSha256Test, EqualsOpenSslHmacForEveryLengthAroundTheBlock) {
  std::mt19937 rng(7);
  auto bytes = [&](size_t n) {
    std::string s(n, '\0');
    for (char& c : s) {
      c = static_cast<char>(rng());
    }
    return s;
  };
  for (size_t key_len : {0, 1, 31, 32, 63, 64, 65, 128, 200}) {
    const std::string key = bytes(key_len);
    const HmacSha256Key prepared(key);
    for (size_t data_len = 0; data_len <= 200; data_len += 7) {
      const std::string data = bytes(data_len);
      unsigned char want[EVP_MAX_MD_SIZE];
      unsigned int want_len = 0;
      ASSERT_NE(
          HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
               reinterpret_cast<const unsigned char*>(data.data()), data.size(), want, &want_len),
          nullptr);
      EXPECT_EQ(Mac(prepared, data),
                absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(want), want_len)))
          << "key " << key_len << " data " << data_len;
    }
  }
}

}  // namespace
}  // namespace ringwarden

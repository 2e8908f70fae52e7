#include "common/sha256.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace ringwarden {
namespace {

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

}  // namespace
}  // namespace ringwarden

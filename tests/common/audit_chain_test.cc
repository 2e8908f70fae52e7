// The audit hash chain: the canonical encoding is pinned byte for byte (the
// PostgreSQL trigger must produce the same), and the verifier names the first
// bad seq for every kind of tampering.
#include "common/audit_chain.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"

namespace ringwarden {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kT0 = 1'700'000'000'123'456;

AuditChainEntry Base() {
  AuditChainEntry e;
  e.at_unix_micros = kT0;
  e.actor = "alice";
  e.action = "content.upload";
  e.evidence_json = R"({"a": 1})";
  return e;
}

// Chain builds `n` correctly chained entries with distinct contents.
std::vector<AuditChainEntry> Chain(int n) {
  std::vector<AuditChainEntry> out;
  std::string prev(kAuditGenesisHash);
  for (int i = 1; i <= n; ++i) {
    AuditChainEntry e = Base();
    e.seq = i;
    e.prev_hash = prev;
    e.at_unix_micros = kT0 + i * 1000;
    e.actor = i % 2 == 0 ? "bob" : "alice";
    e.action = "rollout.promote";
    e.rollout_id = "ro-1a2b3c4d";
    e.from_state = "CANARY";
    e.to_state = "EARLY";
    e.reason = absl::StrCat("step ", i);
    e.evidence_json = absl::StrCat(R"({"rings": [], "step": )", i, "}");
    e.entry_hash = AuditChainHash(e);
    prev = e.entry_hash;
    out.push_back(e);
  }
  return out;
}

absl::StatusOr<AuditChainHead> Verify(const std::vector<AuditChainEntry>& chain,
                                      std::vector<AuditChainHead> expected = {}) {
  AuditChainVerifier verifier(std::move(expected));
  for (const AuditChainEntry& e : chain) {
    const absl::Status added = verifier.Add(e);
    if (!added.ok()) {
      // A failed verifier keeps answering the same failure.
      EXPECT_EQ(verifier.Add(e), added);
      EXPECT_EQ(verifier.Finish().status(), added);
      return added;
    }
  }
  return verifier.Finish();
}

void ExpectBroken(const absl::StatusOr<AuditChainHead>& result, const std::string& prefix) {
  ASSERT_FALSE(result.ok()) << "verified although tampered: " << prefix;
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(result.status().message()), ::testing::StartsWith(prefix))
      << result.status();
}

TEST(AuditChainEncodingTest, IsPinnedByteForByte) {
  AuditChainEntry e = Base();
  e.seq = 1;
  e.prev_hash = std::string(kAuditGenesisHash);
  EXPECT_EQ(
      AuditChainEncoding(e),
      absl::StrCat("ringwarden.audit.v1\n1:1,64:", kAuditGenesisHash,
                   ",16:1700000000123456,5:alice,14:content.upload,0:,0:,0:,0:,8:{\"a\": 1},"));
  EXPECT_EQ(AuditChainHash(e), Sha256Hex(AuditChainEncoding(e)));
  // entry_hash itself is not covered.
  AuditChainEntry with_hash = e;
  with_hash.entry_hash = "ff";
  EXPECT_EQ(AuditChainHash(with_hash), AuditChainHash(e));
}

TEST(AuditChainEncodingTest, CountsBytesNotCharactersAndNegativeTimes) {
  AuditChainEntry e = Base();
  e.seq = 12;
  e.prev_hash = std::string(kAuditGenesisHash);
  e.at_unix_micros = -5;
  e.actor = "zoë";  // 4 bytes in UTF-8
  EXPECT_THAT(AuditChainEncoding(e), HasSubstr("2:12,64:"));
  EXPECT_THAT(AuditChainEncoding(e), HasSubstr(",2:-5,4:zoë,"));
}

TEST(AuditChainEncodingTest, FieldBoundariesCannotShift) {
  // The same concatenated text split differently hashes differently.
  AuditChainEntry a = Base();
  a.actor = "al";
  a.action = "ice";
  AuditChainEntry b = Base();
  b.actor = "ali";
  b.action = "ce";
  EXPECT_NE(AuditChainHash(a), AuditChainHash(b));
  // A field that embeds the separators of the next one cannot forge it.
  AuditChainEntry c = Base();
  c.reason = "x,0:,";
  AuditChainEntry d = Base();
  d.reason = "x";
  d.evidence_json = std::string("0:,") + d.evidence_json;
  EXPECT_NE(AuditChainHash(c), AuditChainHash(d));
}

TEST(AuditChainVerifierTest, IntactChainPassesAndReturnsItsHead) {
  const std::vector<AuditChainEntry> chain = Chain(5);
  auto head = Verify(chain);
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->seq, 5);
  EXPECT_EQ(head->hash, chain.back().entry_hash);
  EXPECT_EQ(head->ToString(), absl::StrCat("5:", chain.back().entry_hash));
  // With every earlier head expected too.
  std::vector<AuditChainHead> heads;
  for (const AuditChainEntry& e : chain) {
    heads.push_back({e.seq, e.entry_hash});
  }
  EXPECT_TRUE(Verify(chain, heads).ok());
}

TEST(AuditChainVerifierTest, EmptyChainHasTheGenesisHead) {
  auto head = Verify({});
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->seq, 0);
  EXPECT_EQ(head->hash, kAuditGenesisHash);
}

TEST(AuditChainVerifierTest, EditedFieldsNameTheirSeq) {
  const std::vector<std::function<void(AuditChainEntry&)>> edits = {
      [](AuditChainEntry& e) { e.actor = "mallory"; },
      [](AuditChainEntry& e) { e.reason = "nothing to see"; },
      [](AuditChainEntry& e) { e.evidence_json = R"({"rings": [], "step": 0})"; },
      [](AuditChainEntry& e) { e.at_unix_micros += 1; },
      [](AuditChainEntry& e) { e.action = "rollout.halt"; },
      [](AuditChainEntry& e) { e.rollout_id = ""; },
      [](AuditChainEntry& e) { e.from_state = "EARLY"; },
      [](AuditChainEntry& e) { e.to_state = "BROAD"; },
  };
  for (size_t i = 0; i < edits.size(); ++i) {
    std::vector<AuditChainEntry> chain = Chain(5);
    edits[i](chain[2]);
    ExpectBroken(Verify(chain), "seq 3: edited entry: ");
  }
}

TEST(AuditChainVerifierTest, RehashedEditBreaksTheNextLink) {
  std::vector<AuditChainEntry> chain = Chain(5);
  chain[2].reason = "rewritten";
  chain[2].entry_hash = AuditChainHash(chain[2]);
  ExpectBroken(Verify(chain), "seq 4: broken link: ");
}

TEST(AuditChainVerifierTest, WrongGenesisIsABrokenLink) {
  std::vector<AuditChainEntry> chain = Chain(1);
  chain[0].prev_hash = Sha256Hex("elsewhere");
  chain[0].entry_hash = AuditChainHash(chain[0]);
  auto result = Verify(chain);
  ExpectBroken(result, "seq 1: broken link: ");
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("genesis"));
}

TEST(AuditChainVerifierTest, DeletedMiddleEntryIsMissing) {
  std::vector<AuditChainEntry> chain = Chain(5);
  chain.erase(chain.begin() + 2);
  auto result = Verify(chain);
  ExpectBroken(result, "seq 3: missing entry: ");
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("skips from seq 2 to seq 4"));
}

TEST(AuditChainVerifierTest, ChainNotStartingAtOneIsMissingSeqOne) {
  std::vector<AuditChainEntry> chain = Chain(3);
  chain.erase(chain.begin());
  ExpectBroken(Verify(chain), "seq 1: missing entry: ");
}

TEST(AuditChainVerifierTest, DuplicatedOrReorderedEntryIsAFork) {
  std::vector<AuditChainEntry> chain = Chain(3);
  chain.push_back(chain[1]);
  ExpectBroken(Verify(chain), "seq 2: fork: ");
}

TEST(AuditChainVerifierTest, TruncatedTailFailsOnlyWithAnExpectedHead) {
  const std::vector<AuditChainEntry> full = Chain(6);
  const AuditChainHead recorded{6, full.back().entry_hash};
  std::vector<AuditChainEntry> truncated(full.begin(), full.begin() + 4);
  EXPECT_TRUE(Verify(truncated).ok());  // a shorter chain is still a chain
  auto result = Verify(truncated, {recorded});
  ExpectBroken(result, "seq 6: expected head absent: ");
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("end of the log at seq 4"));
  // An older recorded head still verifies against the longer chain.
  EXPECT_TRUE(Verify(full, {{3, full[2].entry_hash}}).ok());
}

TEST(AuditChainVerifierTest, ChainRestartedFromGenesisFailsTheExpectedHead) {
  const std::vector<AuditChainEntry> original = Chain(4);
  const AuditChainHead recorded{3, original[2].entry_hash};
  // Rebuilt from genesis with one entry changed: internally consistent.
  std::vector<AuditChainEntry> rebuilt = Chain(6);
  rebuilt[1].reason = "history rewritten";
  std::string prev(kAuditGenesisHash);
  for (AuditChainEntry& e : rebuilt) {
    e.prev_hash = prev;
    e.entry_hash = AuditChainHash(e);
    prev = e.entry_hash;
  }
  EXPECT_TRUE(Verify(rebuilt).ok());
  ExpectBroken(Verify(rebuilt, {recorded}), "seq 3: fork: ");
  // Rebuilt shorter than the recorded head: absent.
  rebuilt.resize(2);
  ExpectBroken(Verify(rebuilt, {recorded}), "seq 3: expected head absent: ");
}

TEST(AuditChainVerifierTest, MalformedEntriesAreRefusedWithoutEchoingThem) {
  const std::string hostile = "\x1b[31mnot hex\n";
  std::vector<AuditChainEntry> chain = Chain(3);
  chain[1].entry_hash = hostile;
  auto result = Verify(chain);
  ExpectBroken(result, "seq 2: malformed entry: entry_hash is not 64 lowercase hex");
  EXPECT_THAT(std::string(result.status().message()), ::testing::Not(HasSubstr("\x1b")));

  chain = Chain(3);
  chain[1].prev_hash = std::string(63, 'a');
  ExpectBroken(Verify(chain), "seq 2: malformed entry: prev_hash is not 64 lowercase hex");
  chain = Chain(3);
  chain[1].prev_hash = std::string(64, 'A');
  ExpectBroken(Verify(chain), "seq 2: malformed entry: prev_hash");
  chain = Chain(3);
  chain[0].seq = 0;
  ExpectBroken(Verify(chain), "seq 0: malformed entry: seq must be positive");
  chain = Chain(3);
  chain[0].seq = std::numeric_limits<int64_t>::min();
  ExpectBroken(Verify(chain), "seq -9223372036854775808: malformed entry");
  chain = Chain(3);
  chain[2].seq = std::numeric_limits<int64_t>::max();
  ExpectBroken(Verify(chain), "seq 3: missing entry: ");
}

TEST(AuditChainVerifierTest, HugeFieldsVerifyAndEditsOfThemAreFound) {
  std::vector<AuditChainEntry> chain = Chain(3);
  chain[1].reason = std::string(8 << 20, 'r');
  chain[1].evidence_json = absl::StrCat(R"({"blob": ")", std::string(1 << 20, 'e'), "\"}");
  chain[1].entry_hash = AuditChainHash(chain[1]);
  chain[2].prev_hash = chain[1].entry_hash;
  chain[2].entry_hash = AuditChainHash(chain[2]);
  ASSERT_TRUE(Verify(chain).ok());
  chain[1].reason.back() = 's';
  ExpectBroken(Verify(chain), "seq 2: edited entry: ");
}

TEST(AuditChainHeadTest, ParsesWhatToStringPrints) {
  const AuditChainHead head{1234, Sha256Hex("x")};
  auto parsed = ParseAuditChainHead(head.ToString());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->seq, 1234);
  EXPECT_EQ(parsed->hash, head.hash);
}

TEST(AuditChainHeadTest, RefusesMalformedHeadsClearly) {
  const std::string hash = Sha256Hex("x");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "SEQ:HASH"},
      {hash, "SEQ:HASH"},
      {":" + hash, "SEQ must be a positive whole number"},
      {"0:" + hash, "SEQ must be a positive whole number"},
      {"-3:" + hash, "SEQ must be a positive whole number"},
      {"+3:" + hash, "SEQ must be a positive whole number"},
      {" 3:" + hash, "SEQ must be a positive whole number"},
      {"9999999999999999999:" + hash, "SEQ must be a positive whole number"},
      {"3:", "HASH must be 64 lowercase hex characters"},
      {"3:" + hash.substr(1), "HASH must be 64 lowercase hex characters"},
      {"3:" + hash + "0", "HASH must be 64 lowercase hex characters"},
      {"3:" + std::string(64, 'g'), "HASH must be 64 lowercase hex characters"},
      {"3:" + std::string(64, 'F'), "HASH must be 64 lowercase hex characters"},
      {"3:" + hash + "\n", "HASH must be 64 lowercase hex characters"},
      {"3:" + hash + ":" + hash, "at most 84 characters"},
      {std::string(1 << 20, '7'), "at most 84 characters"},
  };
  for (const auto& [text, message] : cases) {
    auto parsed = ParseAuditChainHead(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(message)) << text.substr(0, 80);
    EXPECT_LT(parsed.status().message().size(), 300u);
  }
}

}  // namespace
}  // namespace ringwarden

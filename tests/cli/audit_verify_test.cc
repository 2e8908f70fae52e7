// `ringctl audit verify` without a server: the paging over ListAuditLog, a
// server that misbehaves (repeats pages, fails), and what is printed.
#include "cli/audit_verify.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ringwarden {
namespace {

using ::testing::HasSubstr;

// Log is a chained log the fake server pages through, `page` entries at a time.
struct Log {
  std::vector<v1::AuditEntry> entries;
  int page = 2;
  std::vector<int64_t> asked;  // the after_seq of each call

  explicit Log(int n) {
    std::string prev(kAuditGenesisHash);
    for (int i = 1; i <= n; ++i) {
      v1::AuditEntry e;
      e.set_seq(i);
      e.set_prev_hash(prev);
      e.set_at_unix_micros(1'700'000'000'000'000 + i);
      e.set_at_unix_ms(1'700'000'000'000);
      e.set_actor("alice");
      e.set_action("pin.set");
      e.set_reason(absl::StrCat("step ", i));
      e.set_evidence_json("{}");
      e.set_entry_hash(AuditChainHash(ChainEntryFrom(e)));
      prev = e.entry_hash();
      entries.push_back(e);
    }
  }

  AuditPageFetcher Fetcher() {
    return [this](int64_t after_seq) -> absl::StatusOr<v1::ListAuditLogResponse> {
      asked.push_back(after_seq);
      v1::ListAuditLogResponse resp;
      for (const v1::AuditEntry& e : entries) {
        if (e.seq() > after_seq && resp.entries_size() < page) {
          *resp.add_entries() = e;
        }
      }
      return resp;
    };
  }
};

TEST(AuditVerifyTest, PagesThroughTheWholeLog) {
  Log log(5);
  auto head = VerifyAuditLog(log.Fetcher(), {{2, log.entries[1].entry_hash()}});
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->seq, 5);
  EXPECT_EQ(head->hash, log.entries[4].entry_hash());
  EXPECT_EQ(log.asked, (std::vector<int64_t>{0, 2, 4, 5}));
}

TEST(AuditVerifyTest, EditedEntryOnALaterPageIsNamed) {
  Log log(5);
  log.entries[3].set_actor("mallory");
  auto head = VerifyAuditLog(log.Fetcher(), {});
  EXPECT_EQ(head.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(head.status().message()), HasSubstr("seq 4: edited entry"));
}

TEST(AuditVerifyTest, AServerRepeatingItsPagesCannotLoopForever) {
  Log log(3);
  AuditPageFetcher same_page = [&log](int64_t) -> absl::StatusOr<v1::ListAuditLogResponse> {
    v1::ListAuditLogResponse resp;
    *resp.add_entries() = log.entries[0];
    return resp;
  };
  auto head = VerifyAuditLog(same_page, {});
  EXPECT_EQ(head.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(head.status().message()), HasSubstr("seq 1: fork"));
}

TEST(AuditVerifyTest, AnOldServerWithoutChainFieldsIsMalformed) {
  Log log(2);
  log.entries[0].clear_prev_hash();
  log.entries[0].clear_entry_hash();
  log.entries[0].clear_seq();
  AuditPageFetcher old_server = [&log](int64_t) -> absl::StatusOr<v1::ListAuditLogResponse> {
    v1::ListAuditLogResponse resp;  // ignores after_seq, as a server without paging would
    *resp.add_entries() = log.entries[0];
    return resp;
  };
  auto head = VerifyAuditLog(old_server, {});
  EXPECT_EQ(head.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(head.status().message()), HasSubstr("seq 0: malformed entry"));
}

TEST(AuditVerifyTest, FetchErrorsPassThrough) {
  AuditPageFetcher down = [](int64_t) -> absl::StatusOr<v1::ListAuditLogResponse> {
    return absl::UnavailableError("connection refused");
  };
  EXPECT_EQ(VerifyAuditLog(down, {}).status().code(), absl::StatusCode::kUnavailable);
}

TEST(AuditVerifyTest, RendersTheHeadToRecord) {
  const AuditChainHead head{7, std::string(64, 'a')};
  std::ostringstream table, json;
  RenderAuditVerified(head, OutputFormat::kTable, table);
  EXPECT_THAT(table.str(), HasSubstr("audit log intact: 7 entries"));
  EXPECT_THAT(table.str(), HasSubstr("head 7:" + std::string(64, 'a')));
  RenderAuditVerified(head, OutputFormat::kJson, json);
  const nlohmann::json doc = nlohmann::json::parse(json.str());
  EXPECT_EQ(doc["intact"], true);
  EXPECT_EQ(doc["entries"], 7);
  EXPECT_EQ(doc["head"], "7:" + std::string(64, 'a'));
  std::ostringstream empty;
  RenderAuditVerified(AuditChainHead{0, std::string(kAuditGenesisHash)}, OutputFormat::kTable,
                      empty);
  EXPECT_THAT(empty.str(), HasSubstr("no entries yet"));
}

}  // namespace
}  // namespace ringwarden

#include "server/core/telemetry_writer.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "tests/support/fake_store.h"

namespace ringwarden {
namespace {

using ::ringwarden::testing::FakeStore;

// The flush thread never fires within a test: every Flush() is driven by hand.
constexpr absl::Duration kNeverDuringTheTest = absl::Hours(1);
const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

HeartbeatRow Heartbeat(const std::string& agent_id, int seconds) {
  return HeartbeatRow{agent_id, {{"rules", 1}}, "boot-1", kT0 + absl::Seconds(seconds)};
}

TelemetryRows HeartbeatRows(const std::string& agent_id, std::vector<int> seconds) {
  TelemetryRows rows;
  for (int s : seconds) {
    rows.heartbeats.push_back(Heartbeat(agent_id, s));
  }
  return rows;
}

std::vector<absl::Time> HeartbeatTimes(const TelemetryRows& rows) {
  std::vector<absl::Time> times;
  for (const HeartbeatRow& h : rows.heartbeats) {
    times.push_back(h.at);
  }
  return times;
}

std::vector<absl::Time> Seconds(std::vector<int> seconds) {
  std::vector<absl::Time> times;
  for (int s : seconds) {
    times.push_back(kT0 + absl::Seconds(s));
  }
  return times;
}

// DuringWriteSink runs `during_write` inside the write, as rows arriving
// while a transaction is in flight would, then writes to the fake store.
class DuringWriteSink final : public TelemetrySink {
 public:
  explicit DuringWriteSink(TelemetrySink& sink) : sink_(sink) {}
  absl::Status WriteTelemetry(const TelemetryRows& rows) override {
    if (during_write) {
      std::exchange(during_write, nullptr)();
    }
    return sink_.WriteTelemetry(rows);
  }
  std::function<void()> during_write;

 private:
  TelemetrySink& sink_;
};

class TelemetryWriterTest : public ::testing::Test {
 protected:
  FakeClock clock_{kT0};
  FakeStore store_{clock_};
};

TEST_F(TelemetryWriterTest, FlushWritesAddedRowsToTheSink) {
  TelemetryWriter writer(store_, kNeverDuringTheTest, 100);
  TelemetryRows rows = HeartbeatRows("a-1", {1, 2});
  rows.agents.push_back(AgentUpsert{"a-1", Ring::kCanary, {}, "host-1", kT0});
  rows.applies.push_back(
      ApplyRow{"a-1", "rules", 1, ApplyOutcome::kApplied, "", kT0 + absl::Seconds(1)});
  ASSERT_TRUE(writer.Add(rows));
  EXPECT_EQ(writer.Pending(), 4u);
  EXPECT_EQ(store_.Calls("write_telemetry"), 0);

  ASSERT_TRUE(writer.Flush().ok());

  EXPECT_EQ(store_.Calls("write_telemetry"), 1);
  EXPECT_EQ(writer.Pending(), 0u);
  EXPECT_EQ(writer.RowsWritten(), 4);
  const TelemetryRows written = store_.Written();
  EXPECT_EQ(HeartbeatTimes(written), Seconds({1, 2}));
  ASSERT_EQ(written.agents.size(), 1u);
  EXPECT_EQ(written.agents[0].hostname, "host-1");
  ASSERT_EQ(written.applies.size(), 1u);
  EXPECT_EQ(written.applies[0].outcome, ApplyOutcome::kApplied);
}

TEST_F(TelemetryWriterTest, FlushWithNothingQueuedDoesNotWrite) {
  TelemetryWriter writer(store_, kNeverDuringTheTest, 100);
  EXPECT_TRUE(writer.Flush().ok());
  EXPECT_EQ(store_.Calls("write_telemetry"), 0);
}

TEST_F(TelemetryWriterTest, AddRefusesRowsBeyondTheBound) {
  TelemetryWriter writer(store_, kNeverDuringTheTest, 3);
  ASSERT_TRUE(writer.Add(HeartbeatRows("a-1", {1, 2})));
  EXPECT_FALSE(writer.Add(HeartbeatRows("a-2", {3, 4})));  // 4 > 3: nothing of it is queued
  EXPECT_EQ(writer.Pending(), 2u);
  EXPECT_TRUE(writer.Add(HeartbeatRows("a-3", {5})));  // exactly at the bound
  EXPECT_EQ(writer.Pending(), 3u);
  EXPECT_FALSE(writer.Add(HeartbeatRows("a-4", {6})));

  ASSERT_TRUE(writer.Flush().ok());
  EXPECT_EQ(HeartbeatTimes(store_.Written()), Seconds({1, 2, 5}));
}

TEST_F(TelemetryWriterTest, UnavailableRequeuesTheBatchInFrontOfNewerRows) {
  TelemetryWriter writer(store_, kNeverDuringTheTest, 100);
  store_.FailNext("write_telemetry", absl::UnavailableError("database unreachable"));
  ASSERT_TRUE(writer.Add(HeartbeatRows("a-1", {1, 2})));

  EXPECT_TRUE(absl::IsUnavailable(writer.Flush()));
  EXPECT_EQ(writer.Pending(), 2u);
  EXPECT_EQ(writer.WriteErrors(), 1);
  EXPECT_EQ(writer.DroppedRows(), 0);

  ASSERT_TRUE(writer.Add(HeartbeatRows("a-2", {3})));
  ASSERT_TRUE(writer.Flush().ok());
  EXPECT_EQ(HeartbeatTimes(store_.Written()), Seconds({1, 2, 3}));
  EXPECT_EQ(writer.RowsWritten(), 3);
  EXPECT_EQ(writer.Pending(), 0u);
  EXPECT_EQ(store_.Calls("write_telemetry"), 2);
}

TEST_F(TelemetryWriterTest, RequeueOverTheBoundDropsTheOldestHeartbeatsFirst) {
  DuringWriteSink sink(store_);
  TelemetryWriter writer(sink, kNeverDuringTheTest, 4);
  TelemetryRows first = HeartbeatRows("a-1", {1, 2});
  first.agents.push_back(AgentUpsert{"a-1", Ring::kCanary, {}, "host-1", kT0});
  ASSERT_TRUE(writer.Add(first));  // 3 rows
  TelemetryRows meanwhile = HeartbeatRows("a-1", {3, 4});
  meanwhile.applies.push_back(
      ApplyRow{"a-1", "rules", 1, ApplyOutcome::kApplied, "", kT0 + absl::Seconds(3)});
  bool added_meanwhile = false;
  sink.during_write = [&] { added_meanwhile = writer.Add(meanwhile); };  // 3 more rows
  store_.FailNext("write_telemetry", absl::UnavailableError("database unreachable"));

  EXPECT_TRUE(absl::IsUnavailable(writer.Flush()));

  ASSERT_TRUE(added_meanwhile);
  // 6 rows re-queued against a bound of 4: the two oldest heartbeats go.
  EXPECT_EQ(writer.Pending(), 4u);
  EXPECT_EQ(writer.DroppedRows(), 2);
  ASSERT_TRUE(writer.Flush().ok());
  const TelemetryRows written = store_.Written();
  EXPECT_EQ(HeartbeatTimes(written), Seconds({3, 4}));
  EXPECT_EQ(written.agents.size(), 1u);
  EXPECT_EQ(written.applies.size(), 1u);
}

class PoisonBatchTest : public TelemetryWriterTest,
                        public ::testing::WithParamInterface<absl::StatusCode> {};

TEST_P(PoisonBatchTest, IsDroppedAndCountedWhileLaterBatchesFlow) {
  TelemetryWriter writer(store_, kNeverDuringTheTest, 100);
  store_.FailNext("write_telemetry", absl::Status(GetParam(), "refused"));
  ASSERT_TRUE(writer.Add(HeartbeatRows("a-1", {1, 2})));

  EXPECT_EQ(writer.Flush().code(), GetParam());
  EXPECT_EQ(writer.Pending(), 0u);
  EXPECT_EQ(writer.DroppedRows(), 2);
  EXPECT_EQ(writer.WriteErrors(), 1);

  ASSERT_TRUE(writer.Add(HeartbeatRows("a-2", {3, 4})));
  ASSERT_TRUE(writer.Flush().ok());
  EXPECT_EQ(HeartbeatTimes(store_.Written()), Seconds({3, 4}));
  EXPECT_EQ(writer.RowsWritten(), 2);
  EXPECT_EQ(writer.DroppedRows(), 2);
}

// ABORTED is among them: from the store it means a stale rollout revision,
// which a telemetry write never has, so retrying would only block later batches.
INSTANTIATE_TEST_SUITE_P(EveryCodeButUnavailable, PoisonBatchTest,
                         ::testing::Values(absl::StatusCode::kAborted,
                                           absl::StatusCode::kInvalidArgument,
                                           absl::StatusCode::kInternal,
                                           absl::StatusCode::kFailedPrecondition,
                                           absl::StatusCode::kUnknown),
                         [](const ::testing::TestParamInfo<absl::StatusCode>& info) {
                           return absl::StatusCodeToString(info.param);
                         });

TEST_F(TelemetryWriterTest, DestructorWritesWhatIsStillQueued) {
  {
    TelemetryWriter writer(store_, kNeverDuringTheTest, 100);
    ASSERT_TRUE(writer.Add(HeartbeatRows("a-1", {1})));
  }
  EXPECT_EQ(HeartbeatTimes(store_.Written()), Seconds({1}));
}

}  // namespace
}  // namespace ringwarden

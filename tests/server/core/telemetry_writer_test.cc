#include "server/core/telemetry_writer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
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

// A batch of one row that the database refuses is that row's loss alone.
TEST_P(PoisonBatchTest, IsDroppedAndCountedWhileLaterBatchesFlow) {
  TelemetryWriter writer(store_, kNeverDuringTheTest, 100);
  store_.FailNext("write_telemetry", absl::Status(GetParam(), "refused"));
  ASSERT_TRUE(writer.Add(HeartbeatRows("a-1", {1})));

  EXPECT_EQ(writer.Flush().code(), GetParam());
  EXPECT_EQ(writer.Pending(), 0u);
  EXPECT_EQ(writer.DroppedRows(), 1);
  EXPECT_EQ(writer.PoisonRows(), 1);
  EXPECT_EQ(writer.WriteErrors(), 1);

  ASSERT_TRUE(writer.Add(HeartbeatRows("a-2", {3, 4})));
  ASSERT_TRUE(writer.Flush().ok());
  EXPECT_EQ(HeartbeatTimes(store_.Written()), Seconds({3, 4}));
  EXPECT_EQ(writer.RowsWritten(), 2);
  EXPECT_EQ(writer.DroppedRows(), 1);
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

// PoisonSink refuses, like a CHECK constraint would, every write holding a
// crash row whose detail is "poison"; everything else goes to the fake store.
class PoisonSink final : public TelemetrySink {
 public:
  explicit PoisonSink(TelemetrySink& sink) : sink_(sink) {}
  absl::Status WriteTelemetry(const TelemetryRows& rows) override {
    ++writes;
    for (const CrashRow& c : rows.crashes) {
      if (c.detail == "poison" || refuse_everything) {
        return absl::InvalidArgumentError("new row violates check constraint \"no_poison\"");
      }
    }
    if (refuse_everything) {
      return absl::InvalidArgumentError("refused");
    }
    return sink_.WriteTelemetry(rows);
  }
  int writes = 0;
  bool refuse_everything = false;

 private:
  TelemetrySink& sink_;
};

CrashRow Crash(const std::string& agent_id, const std::string& detail) {
  return CrashRow{agent_id, CrashKind::kProcessCrash, "rules", 1, detail, kT0};
}

TEST_F(TelemetryWriterTest, APoisonRowIsDroppedAloneAndTheRestOfItsFlushIsWritten) {
  PoisonSink sink(store_);
  TelemetryWriter writer(sink, kNeverDuringTheTest, 10'000);
  // 100 agents' heartbeats and crashes in one flush, one poison crash among them.
  for (int i = 0; i < 100; ++i) {
    TelemetryRows rows = HeartbeatRows("a-" + std::to_string(i), {i});
    rows.crashes.push_back(Crash("a-" + std::to_string(i), i == 37 ? "poison" : "segv"));
    ASSERT_TRUE(writer.Add(rows));
  }

  EXPECT_TRUE(absl::IsInvalidArgument(writer.Flush()));

  const TelemetryRows written = store_.Written();
  EXPECT_EQ(written.heartbeats.size(), 100u);
  EXPECT_EQ(written.crashes.size(), 99u);
  for (const CrashRow& c : written.crashes) {
    EXPECT_NE(c.detail, "poison");
  }
  EXPECT_EQ(writer.RowsWritten(), 199);
  EXPECT_EQ(writer.DroppedRows(), 1);
  EXPECT_EQ(writer.PoisonRows(), 1);
  EXPECT_EQ(writer.WriteErrors(), 1);
  // Bisection: about two writes per halving, not one per row.
  EXPECT_LE(sink.writes, 1 + 2 * 9);
}

TEST_F(TelemetryWriterTest, ARefusalThatDoesNotRecurLosesNothing) {
  TelemetryWriter writer(store_, kNeverDuringTheTest, 100);
  store_.FailNext("write_telemetry", absl::InternalError("one-off"));
  ASSERT_TRUE(writer.Add(HeartbeatRows("a-1", {1, 2, 3})));
  EXPECT_TRUE(writer.Flush().ok());
  EXPECT_EQ(HeartbeatTimes(store_.Written()), Seconds({1, 2, 3}));
  EXPECT_EQ(writer.DroppedRows(), 0);
  EXPECT_EQ(writer.PoisonRows(), 0);
}

TEST_F(TelemetryWriterTest, ADatabaseRefusingEverythingCostsABoundedNumberOfWrites) {
  PoisonSink sink(store_);
  sink.refuse_everything = true;
  TelemetryLimits limits;
  limits.max_rows = 100'000;
  limits.max_rows_per_agent = 100'000;
  limits.max_isolation_writes = 32;
  TelemetryWriter writer(sink, kNeverDuringTheTest, limits);
  TelemetryRows rows;
  for (int i = 0; i < 50'000; ++i) {
    rows.crashes.push_back(Crash("a-1", "segv"));
  }
  ASSERT_TRUE(writer.Add(rows));
  EXPECT_TRUE(absl::IsInvalidArgument(writer.Flush()));
  EXPECT_LE(sink.writes, 1 + 32);
  EXPECT_EQ(writer.DroppedRows(), 50'000);
  EXPECT_EQ(writer.Pending(), 0u);
}

TEST_F(TelemetryWriterTest, OneAgentFillsOnlyItsOwnShareOfTheQueue) {
  TelemetryLimits limits;
  limits.max_rows = 100;
  limits.max_rows_per_agent = 10;
  TelemetryWriter writer(store_, kNeverDuringTheTest, limits);
  ASSERT_TRUE(writer.Add(HeartbeatRows("flooder", {1, 2, 3, 4, 5, 6, 7, 8})));
  EXPECT_EQ(writer.Admit(HeartbeatRows("flooder", {9, 10, 11})), TelemetryAdmission::kAgentShare);
  EXPECT_EQ(writer.PendingFor("flooder"), 8u);
  EXPECT_EQ(writer.ShareRefusals(), 1);
  // A batch that would take the flooder over its share is refused whole, even
  // with another agent's rows in it; other agents are still admitted.
  TelemetryRows mixed = HeartbeatRows("quiet", {1});
  mixed.crashes.push_back(Crash("flooder", "x"));
  mixed.crashes.push_back(Crash("flooder", "x"));
  mixed.crashes.push_back(Crash("flooder", "x"));
  EXPECT_EQ(writer.Admit(mixed), TelemetryAdmission::kAgentShare);
  for (int i = 0; i < 9; ++i) {
    EXPECT_EQ(writer.Admit(HeartbeatRows("quiet-" + std::to_string(i), {1, 2, 3, 4, 5})),
              TelemetryAdmission::kQueued)
        << i;
  }
  EXPECT_EQ(writer.Pending(), 53u);
  EXPECT_EQ(writer.TrackedAgents(), 10u);
  // A flush frees every share, and forgets the agents.
  ASSERT_TRUE(writer.Flush().ok());
  EXPECT_EQ(writer.TrackedAgents(), 0u);
  EXPECT_EQ(writer.Admit(HeartbeatRows("flooder", {9, 10, 11})), TelemetryAdmission::kQueued);
}

TEST_F(TelemetryWriterTest, ABatchLargerThanTheShareIsAdmittedWhenTheAgentHasNothingQueued) {
  TelemetryLimits limits;
  limits.max_rows = 100;
  limits.max_rows_per_agent = 3;
  TelemetryWriter writer(store_, kNeverDuringTheTest, limits);
  EXPECT_EQ(writer.Admit(HeartbeatRows("a", {1, 2, 3, 4, 5})), TelemetryAdmission::kQueued);
  EXPECT_EQ(writer.Admit(HeartbeatRows("a", {6})), TelemetryAdmission::kAgentShare);
}

TEST_F(TelemetryWriterTest, TheWholeQueueIsStillBounded) {
  TelemetryLimits limits;
  limits.max_rows = 10;
  limits.max_rows_per_agent = 6;
  TelemetryWriter writer(store_, kNeverDuringTheTest, limits);
  ASSERT_TRUE(writer.Add(HeartbeatRows("a", {1, 2, 3, 4, 5, 6})));
  EXPECT_EQ(writer.Admit(HeartbeatRows("b", {1, 2, 3, 4, 5})), TelemetryAdmission::kQueueFull);
  EXPECT_EQ(writer.Admit(HeartbeatRows("b", {1, 2, 3, 4})), TelemetryAdmission::kQueued);
}

TEST_F(TelemetryWriterTest, SharesAreCountedAgainAfterAnOutageRequeues) {
  TelemetryLimits limits;
  limits.max_rows = 100;
  limits.max_rows_per_agent = 4;
  TelemetryWriter writer(store_, kNeverDuringTheTest, limits);
  ASSERT_TRUE(writer.Add(HeartbeatRows("a", {1, 2, 3})));
  store_.FailNext("write_telemetry", absl::UnavailableError("down"));
  EXPECT_TRUE(absl::IsUnavailable(writer.Flush()));
  EXPECT_EQ(writer.PendingFor("a"), 3u);
  EXPECT_EQ(writer.Admit(HeartbeatRows("a", {4, 5})), TelemetryAdmission::kAgentShare);
  EXPECT_EQ(writer.Admit(HeartbeatRows("a", {4})), TelemetryAdmission::kQueued);
}

TEST_F(TelemetryWriterTest, DestructorWritesWhatIsStillQueued) {
  {
    TelemetryWriter writer(store_, kNeverDuringTheTest, 100);
    ASSERT_TRUE(writer.Add(HeartbeatRows("a-1", {1})));
  }
  EXPECT_EQ(HeartbeatTimes(store_.Written()), Seconds({1}));
}

}  // namespace
}  // namespace ringwarden

namespace ringwarden {
namespace {

// RendezvousSink holds each write until `expected` writes are in flight at once (or a
// deadline passes), and remembers the most it saw.
class RendezvousSink final : public TelemetrySink {
 public:
  RendezvousSink(TelemetrySink& sink, int expected) : sink_(sink), expected_(expected) {}
  absl::Status WriteTelemetry(const TelemetryRows& rows) override {
    {
      absl::MutexLock lock(&mu_);
      ++in_flight_;
      most_ = std::max(most_, in_flight_);
      auto all_here = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return in_flight_ >= expected_ || released_;
      };
      if (!mu_.AwaitWithTimeout(absl::Condition(&all_here), absl::Seconds(5))) {
        released_ = true;  // not parallel: let the writes go one by one
      }
      released_ = true;
    }
    absl::Status status;
    {
      absl::MutexLock lock(&write_mu_);
      status = sink_.WriteTelemetry(rows);
    }
    absl::MutexLock lock(&mu_);
    --in_flight_;
    return status;
  }
  int most() {
    absl::MutexLock lock(&mu_);
    return most_;
  }

 private:
  TelemetrySink& sink_;
  const int expected_;
  absl::Mutex mu_;
  absl::Mutex write_mu_;  // the fake store's Written() keeps one order
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int most_ ABSL_GUARDED_BY(mu_) = 0;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
};

TelemetryLimits Lanes(int lanes, size_t max_rows) {
  TelemetryLimits limits;
  limits.max_rows = max_rows;
  limits.max_rows_per_agent = max_rows;
  limits.lanes = lanes;
  return limits;
}

TEST_F(TelemetryWriterTest, LanesKeepEachAgentsRowsInOrderAndCountThemAll) {
  TelemetryWriter writer(store_, kNeverDuringTheTest, Lanes(4, 10'000));
  for (int round = 0; round < 5; ++round) {
    for (int agent = 0; agent < 40; ++agent) {
      ASSERT_TRUE(
          writer.Add(HeartbeatRows("a-" + std::to_string(agent), {round * 10, round * 10 + 1})));
    }
    EXPECT_EQ(writer.PendingFor("a-7"), 2u);
    EXPECT_EQ(writer.TrackedAgents(), 40u);
    ASSERT_TRUE(writer.Flush().ok());
  }
  EXPECT_EQ(writer.Pending(), 0u);
  EXPECT_EQ(writer.RowsWritten(), 5 * 40 * 2);
  // Every lane wrote (40 agents spread over 4 lanes), in 5 rounds.
  EXPECT_EQ(store_.Calls("write_telemetry"), 4 * 5);
  std::map<std::string, std::vector<absl::Time>> per_agent;
  for (const HeartbeatRow& h : store_.Written().heartbeats) {
    per_agent[h.agent_id].push_back(h.at);
  }
  ASSERT_EQ(per_agent.size(), 40u);
  for (const auto& [agent, times] : per_agent) {
    EXPECT_EQ(times, Seconds({0, 1, 10, 11, 20, 21, 30, 31, 40, 41})) << agent;
  }
}

TEST_F(TelemetryWriterTest, LanesWriteAtTheSameTime) {
  RendezvousSink sink(store_, 2);
  TelemetryWriter writer(sink, kNeverDuringTheTest, Lanes(2, 10'000));
  // Enough agents that both lanes hold rows.
  for (int agent = 0; agent < 20; ++agent) {
    ASSERT_TRUE(writer.Add(HeartbeatRows("a-" + std::to_string(agent), {1})));
  }
  ASSERT_TRUE(writer.Flush().ok());
  EXPECT_EQ(sink.most(), 2);
  EXPECT_EQ(writer.RowsWritten(), 20);
}

TEST_F(TelemetryWriterTest, TheQueueBoundIsSplitAmongTheLanes) {
  TelemetryWriter writer(store_, kNeverDuringTheTest, Lanes(2, 10));
  EXPECT_EQ(writer.Admit(HeartbeatRows("a-1", {1, 2, 3, 4, 5, 6})), TelemetryAdmission::kQueueFull)
      << "6 rows do not fit a lane of 5";
  int queued = 0;
  for (int agent = 0; agent < 40; ++agent) {
    queued += writer.Add(HeartbeatRows("a-" + std::to_string(agent), {1})) ? 1 : 0;
  }
  EXPECT_EQ(queued, 10);
  EXPECT_EQ(writer.Pending(), 10u);
}

TEST_F(TelemetryWriterTest, AnOutageInOneLaneKeepsItsRowsAndTheOtherLanesWrite) {
  TelemetryWriter writer(store_, kNeverDuringTheTest, Lanes(2, 10'000));
  for (int agent = 0; agent < 20; ++agent) {
    ASSERT_TRUE(writer.Add(HeartbeatRows("a-" + std::to_string(agent), {1})));
  }
  store_.FailNext("write_telemetry", absl::UnavailableError("database restarting"));
  EXPECT_TRUE(absl::IsUnavailable(writer.Flush()));
  const int64_t written = writer.RowsWritten();
  EXPECT_GT(written, 0);
  EXPECT_LT(written, 20);
  EXPECT_EQ(writer.Pending(), static_cast<size_t>(20 - written));
  ASSERT_TRUE(writer.Flush().ok());
  EXPECT_EQ(writer.RowsWritten(), 20);
  EXPECT_EQ(writer.DroppedRows(), 0);
}

}  // namespace
}  // namespace ringwarden

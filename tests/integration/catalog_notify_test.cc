// A decision committed on one replica reaches another replica's snapshot at commit (PostgreSQL
// LISTEN/NOTIFY), not on its periodic refresh: after a halt no host loads the version for the
// first time, whichever replica it asks. Both replicas refresh on their own only every 10
// minutes here, so only the notification can carry the change in time.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ringwarden/v1/agent.grpc.pb.h"
#include "tests/support/admin_tokens_env.h"
#include "tests/support/test_env.h"

namespace ringwarden {
namespace {

using testing::CliResult;
using testing::ServerProcess;
using testing::TestAgent;

constexpr char kChannel[] = "rules.behavioral";
constexpr absl::Duration kBound = absl::Seconds(3);

class CatalogNotifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::BootstrapTestTokens(db_.conninfo(), keys_);
    leader_ = std::make_unique<ServerProcess>(
        db_.conninfo(), keys_, 0, std::vector<std::string>{"--refresh-interval", "600"});
    other_ = std::make_unique<ServerProcess>(
        db_.conninfo(), keys_, 0,
        std::vector<std::string>{"--refresh-interval", "600", "--no-controller"});
    const std::string token = testing::CreateEnrollmentToken(
        leader_->address(), keys_.admin_token, 2, std::vector<std::string>{"group=dogfood"});
    for (const char* id : {"notify-host-1", "notify-host-2"}) {
      absl::StatusOr<TestAgent> host = testing::EnrollAgent(other_->address(), id, token);
      ASSERT_TRUE(host.ok()) << host.status();
      hosts_.push_back(*host);
    }
  }

  CliResult Ctl(std::vector<std::string> args) {
    return testing::Ringctl(leader_->address(), keys_.releaser_token, std::move(args));
  }

  // PollOther is the other replica's answer to `host`, which runs `current`, now.
  v1::GetAssignmentResponse PollOther(const TestAgent& host, int64_t current = 0) {
    auto stub = v1::AgentService::NewStub(testing::ServerChannel(other_->address(), &host));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::GetAssignmentRequest req;
    req.set_agent_id(host.id);
    req.add_channels(kChannel);
    v1::ChannelVersion* running = req.add_current();
    running->set_channel(kChannel);
    running->set_version(current);
    v1::GetAssignmentResponse resp;
    const grpc::Status status = stub->GetAssignment(&ctx, req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return resp;
  }

  // AssignedOnOther is the version the other replica assigns `host`, which runs `current`, now.
  int64_t AssignedOnOther(const TestAgent& host, int64_t current = 0) {
    const v1::GetAssignmentResponse resp = PollOther(host, current);
    return resp.assignments_size() == 0 ? 0 : resp.assignments(0).version();
  }

  // RingOnOther is the ring the other replica puts `host` in now.
  std::string RingOnOther(const TestAgent& host) { return PollOther(host).ring(); }

  // FetchFromOther downloads `version` from the other replica as `host`.
  std::pair<grpc::Status, std::string> FetchFromOther(const TestAgent& host, int64_t version) {
    auto stub = v1::AgentService::NewStub(testing::ServerChannel(other_->address(), &host));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::FetchContentRequest req;
    req.set_agent_id(host.id);
    req.set_channel(kChannel);
    req.set_version(version);
    auto reader = stub->FetchContent(&ctx, req);
    v1::ContentChunk chunk;
    std::string payload;
    while (reader->Read(&chunk)) {
      payload += chunk.data();
    }
    return {reader->Finish(), payload};
  }

  // Within waits up to kBound for `done` and returns how long it took (or nullopt).
  template <typename F>
  std::optional<absl::Duration> Within(F done) {
    const absl::Time start = absl::Now();
    while (absl::Now() - start < kBound) {
      if (done()) {
        return absl::Now() - start;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return std::nullopt;
  }

  testing::TestDatabase db_;
  testing::TestKeys keys_;
  std::unique_ptr<ServerProcess> leader_;
  std::unique_ptr<ServerProcess> other_;
  std::vector<TestAgent> hosts_;
};

TEST_F(CatalogNotifyTest, AHaltOnOneReplicaStopsFirstDownloadsOnAnotherAtOnce) {
  ASSERT_EQ(testing::PublishContent(leader_->address(), keys_, kChannel, 1, "rules v1").code, 0);
  CliResult started =
      Ctl({"rollout", "start", "--channel", kChannel, "--version", "1", "-o", "json"});
  ASSERT_EQ(started.code, 0) << started.err;
  const std::string id = nlohmann::json::parse(started.out)["id"].get<std::string>();

  // The start, committed through the leader, reaches the other replica's snapshot.
  const std::optional<absl::Duration> start_seen =
      Within([&] { return AssignedOnOther(hosts_[0]) == 1; });
  ASSERT_TRUE(start_seen.has_value()) << "the other replica never assigned v1";
  auto [fetched, payload] = FetchFromOther(hosts_[0], 1);
  ASSERT_TRUE(fetched.ok()) << fetched.error_message();
  EXPECT_EQ(payload, "rules v1");

  // host-2 has not loaded v1 yet; after the halt it must not, on either replica.
  CliResult halted = Ctl({"rollout", "halt", id, "--reason", "crash reports in canary"});
  ASSERT_EQ(halted.code, 0) << halted.err;
  const std::optional<absl::Duration> halt_seen =
      Within([&] { return AssignedOnOther(hosts_[1]) == 0; });
  ASSERT_TRUE(halt_seen.has_value()) << "the other replica kept assigning v1 after the halt";
  auto [refused, nothing] = FetchFromOther(hosts_[1], 1);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(refused.error_message(),
            "rules.behavioral v1 is not assigned to this agent in this replica's snapshot "
            "(halted, stopped or not yet admitted); poll again");
  EXPECT_EQ(nothing, "");
  // host-1, which runs the halted version, keeps it.
  EXPECT_EQ(AssignedOnOther(hosts_[0], /*current=*/1), 1);
  std::cout << "catalog change reached the other replica: start after "
            << absl::FormatDuration(*start_seen) << ", halt after "
            << absl::FormatDuration(*halt_seen) << std::endl;
}

TEST_F(CatalogNotifyTest, ALabelledEnrollmentOnOneReplicaDecidesTheRingOnAnotherAtOnce) {
  // Enrolled through the leader, polling the other replica: only the enrollment's notification
  // (its upsert fires the agents trigger of migration 0010) can bring their labels there in time.
  // Without them each would land in canary only by its hash, which three hosts in a row do not.
  const std::string token = testing::CreateEnrollmentToken(
      leader_->address(), keys_.admin_token, 3, std::vector<std::string>{"group=dogfood"});
  std::vector<TestAgent> labelled;
  for (const char* id : {"labelled-host-1", "labelled-host-2", "labelled-host-3"}) {
    absl::StatusOr<TestAgent> host = testing::EnrollAgent(leader_->address(), id, token);
    ASSERT_TRUE(host.ok()) << host.status();
    labelled.push_back(*host);
  }
  for (const TestAgent& host : labelled) {
    const std::optional<absl::Duration> seen =
        Within([&] { return RingOnOther(host) == "canary"; });
    ASSERT_TRUE(seen.has_value()) << host.id << " is in " << RingOnOther(host)
                                  << " on the other replica";
  }
}

// With the default --refresh-interval, an idle replica does not rebuild its snapshot on a
// timer every few seconds; a notified change is rebuilt at once.
TEST_F(CatalogNotifyTest, AnIdleReplicaRebuildsOnlyWhenAChangeIsNotified) {
  ServerProcess replica(db_.conninfo(), keys_, 0, std::vector<std::string>{"--no-controller"});
  const auto refreshes = [&](const char* cause) {
    return testing::ScrapeMetric(
        replica.metrics_port(),
        absl::StrCat("ringwarden_snapshot_refreshes_total{cause=\"", cause, "\"}"));
  };
  // The listener's first connection asks for one refresh; let it pass.
  ASSERT_TRUE(Within([&] { return refreshes("notified").value_or(0) >= 1; }).has_value());
  // Every rebuild reads the catalog, whoever asked for it: the counters of those reads.
  const auto catalog_reads = [&] {
    double reads = 0;
    for (const char* operation : {"load_catalog", "load_catalog_changes"}) {
      reads += testing::ScrapeMetric(
                   replica.metrics_port(),
                   absl::StrCat("ringwarden_db_operation_duration_seconds_count{operation=\"",
                                operation, "\"}"))
                   .value_or(0);
    }
    return reads;
  };
  const std::optional<double> notified = refreshes("notified");
  const std::optional<double> timer = refreshes("timer");
  ASSERT_TRUE(notified.has_value() && timer.has_value());
  const double reads = catalog_reads();
  ASSERT_GE(reads, 1);
  absl::SleepFor(absl::Seconds(5));  // two ticks of the loop, two of the old 2 s timers
  EXPECT_EQ(refreshes("timer"), timer);
  EXPECT_EQ(refreshes("notified"), notified);
  EXPECT_EQ(catalog_reads(), reads);
  EXPECT_EQ(refreshes("retry"), 0);
  // A committed change is rebuilt at once.
  ASSERT_EQ(testing::PublishContent(leader_->address(), keys_, kChannel, 1, "rules v1").code, 0);
  EXPECT_TRUE(Within([&] { return refreshes("notified") > notified; }).has_value());
  EXPECT_EQ(refreshes("timer"), timer);
}

}  // namespace
}  // namespace ringwarden

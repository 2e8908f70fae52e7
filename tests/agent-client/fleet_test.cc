#include "agent-client/sim/fleet.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/agent-client/fake_agent_service.h"

namespace ringwarden::agent {
namespace {

using testing::FakeAgentService;
using testing::FakeServer;
using testing::MakeTestTrust;
using testing::SignContent;
using testing::SignedContent;
using testing::TestTrust;

constexpr char kChannel[] = "rules.test";
constexpr absl::Duration kPatience = absl::Seconds(60);

TEST(ParseFaultSpecTest, ParsesEveryKey) {
  absl::StatusOr<FaultSpec> spec = ParseFaultSpec(
      "7:crash=0.25,silence=0.1,apply_fail=1,load_fail=0,latency_ms=200,"
      "channel=rules.x,ring=canary,health=0.5,health_kind=load_check_slow,onset_ms=1500");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->version, 7);
  EXPECT_DOUBLE_EQ(spec->crash, 0.25);
  EXPECT_DOUBLE_EQ(spec->silence, 0.1);
  EXPECT_DOUBLE_EQ(spec->apply_fail, 1.0);
  EXPECT_EQ(spec->latency, absl::Milliseconds(200));
  EXPECT_EQ(spec->channel, "rules.x");
  EXPECT_EQ(spec->ring, "canary");
  EXPECT_DOUBLE_EQ(spec->health, 0.5);
  EXPECT_EQ(spec->health_kind, "load_check_slow");
  EXPECT_EQ(spec->onset, absl::Milliseconds(1500));
  EXPECT_TRUE(spec->Matches("rules.x", 7));
  EXPECT_FALSE(spec->Matches("rules.y", 7));
  EXPECT_FALSE(spec->Matches("rules.x", 8));
  EXPECT_TRUE(ParseFaultSpec("3:crash=1").value().Matches("anything", 3));
}

TEST(ParseFaultSpecTest, RejectsBadInputWithUsage) {
  for (const char* bad :
       {"", "x:crash=1", "0:crash=1", "3", "3:", "3:crash=1.5", "3:crash=-1", "3:boom=1",
        "3:latency_ms=-5", "3:channel=A/B", "3:crash", "3:ring=edge", "3:health=2",
        "3:health_kind=CPU High", "3:onset_ms=-1", "3:onset_ms=soon"}) {
    absl::StatusOr<FaultSpec> spec = ParseFaultSpec(bad);
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(spec.status().message().find("want VERSION:"), std::string::npos) << bad;
  }
}

TEST(ParseLabelFractionTest, ParsesAndRejects) {
  absl::StatusOr<LabelFraction> lf = ParseLabelFraction("group=dogfood:0.005");
  ASSERT_TRUE(lf.ok());
  EXPECT_EQ(lf->key, "group");
  EXPECT_EQ(lf->value, "dogfood");
  EXPECT_DOUBLE_EQ(lf->fraction, 0.005);
  for (const char* bad : {"group", "group=dogfood", "=x:0.1", "g=d:2", "g=d:x", "g=:0.1"}) {
    EXPECT_FALSE(ParseLabelFraction(bad).ok()) << bad;
  }
}

class FleetTest : public ::testing::Test {
 protected:
  FleetTest() : key_(Ed25519PrivateKey::Generate().value()), trust_(MakeTestTrust(key_)) {
    fake().SetNextPollMs(50);
    fake().SetTrust(trust_.server_key, 1);
    v1_ = SignContent(key_, kChannel, 1, "rules one");
    v2_ = SignContent(key_, kChannel, 2, "rules two");
    fake().AddContent(kChannel, 2, v2_.served);
  }

  FleetOptions Options(int agents) {
    FleetOptions o;
    o.agents = agents;
    o.threads = 4;
    o.id_prefix = "sim-";
    o.label_fractions = {{"group", "dogfood", 0.1}};
    o.restart_delay = absl::Milliseconds(20);
    o.start_spread = absl::Milliseconds(100);
    o.seed = 42;
    o.agent.channels = {kChannel};
    o.agent.enrollment_token = FakeAgentService::kSecret;
    o.agent.min_poll_interval = absl::Milliseconds(10);
    o.agent.healthy_interval = absl::Hours(1);
    o.agent.heartbeat_interval = absl::Seconds(1);
    o.backoff = {absl::Milliseconds(10), absl::Milliseconds(200), 2.0, 0.5};
    return o;
  }

  std::vector<std::shared_ptr<AgentConnection>> Connections() {
    ConnectionOptions own;
    own.own_connection = true;
    return {AgentConnection::Create(server_.address(), own),
            AgentConnection::Create(server_.address(), own)};
  }

  static int64_t Ring(const FleetSummary& s, const std::string& ring) {
    auto it = s.ring_agents.find(ring);
    return it == s.ring_agents.end() ? 0 : it->second;
  }

  FakeAgentService& fake() { return server_.service(); }

  FakeServer server_;
  Ed25519PrivateKey key_;  // the release key
  TestTrust trust_;
  SignedContent v1_;
  SignedContent v2_;
};

TEST_F(FleetTest, ReachesAssignedVersionsAndBroadNeverAppliesCanaryVersion) {
  fake().Serve("*", v1_);
  fake().SetAssignments("canary", {v2_.assignment});
  Fleet fleet(Options(200), trust_.root, Connections());
  ASSERT_TRUE(fleet.Start().ok());
  const bool settled = fleet.WaitFor(
      [](const FleetSummary& s) {
        return s.enrolled == 200 && Ring(s, "canary") + Ring(s, "broad") == 200 &&
               s.InEffect("canary", kChannel, 2) == Ring(s, "canary") &&
               s.InEffect("broad", kChannel, 1) == Ring(s, "broad");
      },
      kPatience);
  fleet.Stop();
  const FleetSummary s = fleet.Summary();
  ASSERT_TRUE(settled) << s.ToLine();

  const int64_t canary = Ring(s, "canary");
  EXPECT_GT(canary, 5);  // ~10% of 200 carry group=dogfood
  EXPECT_LT(canary, 40);
  EXPECT_EQ(s.EverApplied("canary", kChannel, 2), canary);
  EXPECT_EQ(s.EverApplied("broad", kChannel, 2), 0);
  EXPECT_EQ(s.EverApplied("", kChannel, 1), 200 - canary);
  EXPECT_EQ(s.applied, 200);
  EXPECT_EQ(s.running, 200);
  EXPECT_EQ(s.crashed_agents, 0);
  EXPECT_EQ(s.rpc_errors, 0) << s.last_error;
  EXPECT_NE(s.ToLine().find("enrolled 200/200"), std::string::npos) << s.ToLine();
  // The quickstart reads the hosts that ever loaded a version from this line.
  EXPECT_NE(s.ToLine().find(absl::StrCat("rules.test: v1=", 200 - canary, " v2=", canary,
                                         " (ever loaded: v1=", 200 - canary, " v2=", canary, ")")),
            std::string::npos)
      << s.ToLine();

  nlohmann::json j = nlohmann::json::parse(s.ToJson());
  EXPECT_EQ(j["agents"], 200);
  EXPECT_EQ(j["rings"]["canary"]["agents"], canary);
  EXPECT_EQ(j["rings"]["canary"]["channels"][kChannel]["2"]["ever_applied"], canary);
  EXPECT_EQ(j["rings"]["canary"]["channels"][kChannel]["2"]["in_effect"], canary);
  EXPECT_FALSE(j["rings"]["broad"]["channels"][kChannel].contains("2"));
  EXPECT_EQ(j["rings"]["broad"]["channels"][kChannel]["1"]["in_effect"], 200 - canary);
}

TEST_F(FleetTest, CrashFaultBootLoopsCanaryUntilItRevertsOnItsOwn) {
  FleetOptions options = Options(200);
  options.faults = {ParseFaultSpec("2:crash=1.0").value()};
  fake().Serve("*", v1_);
  Fleet fleet(options, trust_.root, Connections());
  ASSERT_TRUE(fleet.Start().ok());
  ASSERT_TRUE(fleet.WaitFor(
      [](const FleetSummary& s) { return s.InEffect("", kChannel, 1) == 200; }, kPatience))
      << fleet.Summary().ToLine();

  // Only the canary is offered v2, which crashes every host that loads it.
  fake().SetAssignments("canary", {v2_.assignment});
  const int64_t canary = Ring(fleet.Summary(), "canary");
  ASSERT_GT(canary, 0);
  std::string canary_id;
  for (int i = 0; i < 200 && canary_id.empty(); ++i) {
    if (fake().RingOf(absl::StrCat("sim-", i)) == "canary") {
      canary_id = absl::StrCat("sim-", i);
    }
  }
  const bool reverted = fleet.WaitFor(
      [&](const FleetSummary& s) {
        if (s.crashed_agents != canary || s.InEffect("canary", kChannel, 1) != canary ||
            s.running != 200) {
          return false;
        }
        // ... and the reverted host has told the server.
        for (const v1::ApplyReport& r : fake().ApplyReports(canary_id)) {
          if (r.outcome() == v1::APPLY_OUTCOME_REVERTED && r.version() == 2) {
            return true;
          }
        }
        return false;
      },
      kPatience);
  fleet.Stop();
  const FleetSummary s = fleet.Summary();
  ASSERT_TRUE(reverted) << s.ToLine();

  // Crash on apply, then on two restarts; the third restart reverts.
  EXPECT_EQ(s.crashes, 3 * canary) << s.ToLine();
  EXPECT_EQ(s.reverted, canary);
  EXPECT_EQ(s.EverApplied("canary", kChannel, 2), canary);
  EXPECT_EQ(s.EverApplied("broad", kChannel, 2), 0);
  EXPECT_EQ(s.InEffect("", kChannel, 2), 0);
  EXPECT_EQ(s.silent, 0);
  bool crash_on_v2 = false;
  for (const v1::CrashReport& c : fake().CrashReports(canary_id)) {
    crash_on_v2 |= c.kind() == v1::CRASH_KIND_UNCLEAN_SHUTDOWN && c.versions_size() == 1 &&
                   c.versions(0).version() == 2;
  }
  EXPECT_TRUE(crash_on_v2);
}

TEST_F(FleetTest, ALateFaultStrikesHostsAlreadyRunningTheVersionInItsRingOnly) {
  FleetOptions options = Options(200);
  // Health events from the start, for canary hosts running v2 only.
  options.faults = {ParseFaultSpec("2:health=1,health_kind=load_check_slow,ring=canary").value()};
  fake().Serve("*", v1_);
  Fleet fleet(options, trust_.root, Connections());
  EXPECT_EQ(fleet.AddFault(FaultSpec{}).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(fleet.Start().ok());
  ASSERT_TRUE(fleet.WaitFor(
      [](const FleetSummary& s) { return s.InEffect("", kChannel, 1) == 200; }, kPatience))
      << fleet.Summary().ToLine();
  fake().SetAssignments("canary", {v2_.assignment});  // v1 stays last-known-good
  ASSERT_TRUE(fleet.WaitFor(
      [](const FleetSummary& s) {
        return s.enrolled == 200 && s.InEffect("canary", kChannel, 2) == Ring(s, "canary") &&
               Ring(s, "canary") > 0 && Ring(s, "canary") + Ring(s, "broad") == 200;
      },
      kPatience))
      << fleet.Summary().ToLine();
  const int64_t canary = Ring(fleet.Summary(), "canary");
  EXPECT_EQ(fleet.Summary().crashes, 0);  // v2 is healthy until the fault starts
  // Health events travel with the next telemetry batch: wait until every canary host sent one.
  auto health_reports = [&] {
    int64_t hosts = 0;
    for (int i = 0; i < 200; ++i) {
      const std::string id = absl::StrCat("sim-", i);
      bool any = false;
      for (const v1::HealthEvent& h : fake().HealthEvents(id)) {
        EXPECT_EQ(fake().RingOf(id), "canary") << id;
        EXPECT_EQ(h.kind(), "load_check_slow");
        EXPECT_EQ(h.versions_size(), 1);
        any = any || (h.versions_size() == 1 && h.versions(0).version() == 2);
      }
      hosts += any ? 1 : 0;
    }
    return hosts;
  };
  const absl::Time patience = absl::Now() + kPatience;
  while (health_reports() < canary && absl::Now() < patience) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_EQ(health_reports(), canary);

  FaultSpec late;
  late.version = 2;
  late.crash = 1.0;
  late.ring = "canary";
  ASSERT_TRUE(fleet.AddFault(late).ok());
  const bool reverted = fleet.WaitFor(
      [&](const FleetSummary& s) {
        return s.crashed_agents == canary && s.InEffect("canary", kChannel, 1) == canary &&
               s.running == 200;
      },
      kPatience);
  fleet.Stop();
  const FleetSummary s = fleet.Summary();
  ASSERT_TRUE(reverted) << s.ToLine();
  EXPECT_EQ(s.reverted, canary);  // every struck host left v2 through its own breaker
  EXPECT_EQ(s.EverApplied("broad", kChannel, 2), 0);
  EXPECT_EQ(s.InEffect("broad", kChannel, 1), 200 - canary);
}

TEST_F(FleetTest, SilenceAndApplyFailureFaults) {
  FleetOptions options = Options(50);
  options.label_fractions.clear();  // everyone broad
  options.faults = {ParseFaultSpec("1:silence=1").value(),
                    ParseFaultSpec("2:apply_fail=1").value()};
  fake().Serve("*", v1_);
  Fleet fleet(options, trust_.root, Connections());
  ASSERT_TRUE(fleet.Start().ok());
  ASSERT_TRUE(fleet.WaitFor([](const FleetSummary& s) { return s.silent == 50; }, kPatience))
      << fleet.Summary().ToLine();
  fleet.Stop();
  const FleetSummary s = fleet.Summary();
  EXPECT_EQ(s.running, 0);
  EXPECT_EQ(s.InEffect("broad", kChannel, 1), 50);

  options.id_prefix = "fail-";
  Fleet failing(options, trust_.root, Connections());
  fake().Serve("*", v2_);
  ASSERT_TRUE(failing.Start().ok());
  ASSERT_TRUE(
      failing.WaitFor([](const FleetSummary& f) { return f.apply_failed >= 50; }, kPatience))
      << failing.Summary().ToLine();
  failing.Stop();
  EXPECT_EQ(failing.Summary().InEffect("", kChannel, 2), 0);
  EXPECT_EQ(failing.Summary().applied, 0);
}

TEST_F(FleetTest, BackgroundRebootsReportUncleanShutdownsWithVersions) {
  FleetOptions options = Options(20);
  options.reboot_every = absl::Milliseconds(200);
  options.unclean_shutdown_on_restart = 1.0;
  fake().Serve("*", v1_);
  Fleet fleet(options, trust_.root, Connections());
  ASSERT_TRUE(fleet.Start().ok());
  const bool reported = fleet.WaitFor(
      [&](const FleetSummary&) {
        for (int i = 0; i < 20; ++i) {
          bool found = false;
          for (const v1::CrashReport& c : fake().CrashReports(absl::StrCat("sim-", i))) {
            found |= c.versions_size() == 1 && c.versions(0).version() == 1;
          }
          if (!found) {
            return false;
          }
        }
        return true;
      },
      kPatience);
  fleet.Stop();
  EXPECT_TRUE(reported) << fleet.Summary().ToLine();
  EXPECT_GT(fleet.Summary().restarts, 0);
  EXPECT_EQ(fleet.Summary().crashed_agents, 0);  // reboots are not content crashes
}

TEST_F(FleetTest, TurnsStartedLateAreCountedAndOnTimeOnesAreNot) {
  fake().Serve("*", v1_);
  fake().SetNextPollMs(50);
  FleetOptions options = Options(20);
  options.late_after = absl::Milliseconds(300);
  {
    Fleet on_time(options, trust_.root, Connections());
    ASSERT_TRUE(on_time.Start().ok());
    ASSERT_TRUE(on_time.WaitFor([](const FleetSummary& s) { return s.polls >= 200; }, kPatience));
    on_time.Stop();
    const FleetSummary s = on_time.Summary();
    EXPECT_EQ(s.late_turns, 0) << s.ToLine();
    EXPECT_LT(s.max_lateness, options.late_after);
  }
  // One worker for 20 hosts due every 50 ms, each poll taking 100 ms: the fleet falls behind.
  fake().SetAnswerDelay(absl::Milliseconds(100));
  options.threads = 1;
  Fleet behind(options, trust_.root, Connections());
  ASSERT_TRUE(behind.Start().ok());
  ASSERT_TRUE(behind.WaitFor([](const FleetSummary& s) { return s.late_turns >= 5; }, kPatience))
      << behind.Summary().ToLine();
  behind.Stop();
  const FleetSummary s = behind.Summary();
  EXPECT_GE(s.max_lateness, options.late_after);
  EXPECT_NE(s.ToLine().find(absl::StrCat(" late ", s.late_turns)), std::string::npos) << s.ToLine();
  EXPECT_EQ(nlohmann::json::parse(s.ToJson())["late_turns"], s.late_turns);
}

TEST_F(FleetTest, StartValidatesOptions) {
  FleetOptions options = Options(0);
  Fleet fleet(options, trust_.root, Connections());
  EXPECT_EQ(fleet.Start().code(), absl::StatusCode::kInvalidArgument);
  Fleet no_server(Options(1), trust_.root);
  EXPECT_EQ(no_server.Start().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ringwarden::agent

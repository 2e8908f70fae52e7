#include "tests/cli/test_util.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "cli/ringctl.h"

namespace ringwarden::cli_testing {
namespace {

v1::RingProgress Ring(const std::string& name, int64_t targeted, int64_t applied, int64_t healthy,
                      int64_t failed) {
  v1::RingProgress p;
  p.set_ring(name);
  p.set_targeted(targeted);
  p.set_applied(applied);
  p.set_healthy(healthy);
  p.set_failed(failed);
  return p;
}

v1::AuditEntry Entry(int64_t id, int64_t at_ms, const std::string& actor, const std::string& action,
                     const std::string& from, const std::string& to, const std::string& reason,
                     const std::string& evidence) {
  v1::AuditEntry e;
  e.set_id(id);
  e.set_at_unix_ms(at_ms);
  e.set_actor(actor);
  e.set_action(action);
  e.set_rollout_id("ro-1a2b3c4d");
  e.set_from_state(from);
  e.set_to_state(to);
  e.set_reason(reason);
  e.set_evidence_json(evidence);
  return e;
}

constexpr int64_t kStart = 1721361600;  // 2024-07-19 04:00:00 UTC

// Trust is a stored root or floor whose envelope carries `payload_b64` unsigned.
v1::TrustMetadata Trust(const std::string& kind, int64_t version, const std::string& channel,
                        int64_t expires_unix, const std::vector<std::string>& key_ids,
                        const std::string& payload_b64) {
  v1::TrustMetadata m;
  m.set_kind(kind);
  m.set_version(version);
  m.set_channel(channel);
  m.set_expires_unix(expires_unix);
  for (const std::string& id : key_ids) {
    m.add_key_ids(id);
  }
  m.set_envelope(absl::StrCat(R"({"payload":")", payload_b64,
                              R"(","payloadType":"application/vnd.ringwarden.)", kind,
                              R"(+protobuf","signatures":[]})"));
  return m;
}

}  // namespace

TempDir::TempDir() {
  std::string templ = (std::filesystem::temp_directory_path() / "ringctl-test-XXXXXX").string();
  char* made = mkdtemp(templ.data());
  if (made == nullptr) {
    ADD_FAILURE() << "mkdtemp failed";
  }
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Write(const std::string& name, const std::string& content, int mode) const {
  const std::string p = path_ + "/" + name;
  std::filesystem::create_directories(std::filesystem::path(p).parent_path());
  {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
  }
  chmod(p.c_str(), static_cast<mode_t>(mode));
  return p;
}

std::string TempDir::Read(const std::string& name) const {
  std::ifstream in(File(name), std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << File(name);
  std::stringstream data;
  data << in.rdbuf();
  return data.str();
}

ScopedEnv::ScopedEnv() {
  for (const char* name : {"RINGWARDEN_SERVER", "RINGWARDEN_TOKEN", "RINGWARDEN_PROFILE",
                           "RINGWARDEN_CONFIG", "XDG_CONFIG_HOME", "HOME"}) {
    Save(name);
    unsetenv(name);
  }
  setenv("HOME", home_.path().c_str(), 1);
}

ScopedEnv::~ScopedEnv() {
  for (const auto& [name, value] : saved_) {
    if (value.has_value()) {
      setenv(name.c_str(), value->c_str(), 1);
    } else {
      unsetenv(name.c_str());
    }
  }
}

void ScopedEnv::Save(const std::string& name) {
  if (saved_.count(name) > 0) {
    return;
  }
  const char* v = std::getenv(name.c_str());
  saved_[name] = v == nullptr ? std::nullopt : std::optional<std::string>(v);
}

void ScopedEnv::Set(const std::string& name, const std::string& value) {
  Save(name);
  setenv(name.c_str(), value.c_str(), 1);
}

void ExpectGolden(const std::string& name, const std::string& actual) {
  const std::string path = std::string(RINGWARDEN_CLI_GOLDEN_DIR) + "/" + name;
  const char* update = std::getenv("RINGWARDEN_UPDATE_GOLDENS");
  if (update != nullptr && std::string(update) == "1") {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << actual;
    return;
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in.good()) << "missing golden " << path
                         << " (run with RINGWARDEN_UPDATE_GOLDENS=1 to create it)\n"
                         << actual;
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(expected.str(), actual)
      << "golden " << path << " differs; RINGWARDEN_UPDATE_GOLDENS=1 rewrites it";
}

v1::Rollout SampleRollout() {
  v1::Rollout r;
  r.set_id("ro-1a2b3c4d");
  r.set_channel("rules.behavioral");
  r.set_version(42);
  r.set_state(v1::EARLY);
  r.set_previous_version(41);
  r.set_created_unix(kStart);
  r.set_updated_unix(kStart + 3720);
  r.set_created_by("alice");
  r.set_revision(3);
  r.set_policy_name("default");
  r.set_policy_version(2);
  *r.add_rings() = Ring("canary", 18, 18, 18, 0);
  *r.add_rings() = Ring("early", 120, 40, 30, 2);
  *r.add_rings() = Ring("broad", 862, 0, 0, 0);
  return r;
}

v1::Rollout RolloutIn(v1::RolloutState state) {
  v1::Rollout r = SampleRollout();
  r.set_state(state);
  r.clear_rings();
  switch (state) {
    case v1::CANARY:
      *r.add_rings() = Ring("canary", 18, 9, 6, 0);
      *r.add_rings() = Ring("early", 120, 0, 0, 0);
      *r.add_rings() = Ring("broad", 862, 0, 0, 0);
      break;
    case v1::EARLY:
      return SampleRollout();
    case v1::BROAD:
      r.set_broad_wave(1);
      r.set_broad_fraction(0.5);
      *r.add_rings() = Ring("canary", 18, 18, 18, 0);
      *r.add_rings() = Ring("early", 120, 120, 119, 0);
      *r.add_rings() = Ring("broad", 862, 431, 400, 1);
      break;
    case v1::HALTED:
      r.set_halted_from(v1::CANARY);
      *r.add_rings() = Ring("canary", 18, 12, 3, 4);
      *r.add_rings() = Ring("early", 120, 0, 0, 0);
      *r.add_rings() = Ring("broad", 862, 0, 0, 0);
      break;
    default:
      *r.add_rings() = Ring("canary", 18, 18, 18, 0);
      *r.add_rings() = Ring("early", 120, 120, 120, 0);
      *r.add_rings() = Ring("broad", 862, 862, 860, 0);
      break;
  }
  return r;
}

v1::ExplainRolloutResponse SampleExplain() {
  v1::ExplainRolloutResponse x;
  *x.mutable_rollout() = SampleRollout();
  v1::RingDecision* canary = x.add_decisions();
  canary->set_ring("canary");
  canary->set_kind("promote");
  canary->set_reason("gate_passed");
  canary->set_gate_passed(true);
  canary->set_summary("canary: 18 of 18 healthy after 1h00m; no regression against control");
  canary->set_evaluated_unix_ms((kStart + 3600) * 1000);
  canary->set_evidence_json(
      R"({"treated":{"attempted":18,"healthy":18,"pending":0,"crashed":0,"silent":0,)"
      R"("reverted":0,"apply_failed":0},"control":{"agents":982,"failed":1},)"
      R"("test":{"name":"sprt","halt_bound":2.94,"accept_bound":-2.25,)"
      R"("vs_control":{"llr":-2.5},"vs_baseline":{"llr":-3.1}},"waiting_for":[]})");
  v1::RingDecision* early = x.add_decisions();
  early->set_ring("early");
  early->set_kind("wait");
  early->set_reason("gate_pending");
  early->set_summary("early: 30 of 120 healthy; waiting for bake time and more agents");
  early->set_evaluated_unix_ms((kStart + 3710) * 1000);
  early->set_evidence_json(
      R"({"treated":{"attempted":42,"healthy":30,"pending":10,"crashed":0,"silent":0,)"
      R"("reverted":0,"apply_failed":2},"control":{"agents":862,"failed":0},)"
      R"("waiting_for":["bake time: 3490 s left","healthy agents: 30 of 60"]})");
  v1::AuditEntry* a = x.add_automatic_actions();
  a->set_id(7);
  a->set_at_unix_ms((kStart + 3600) * 1000 + 250);
  a->set_actor("controller");
  a->set_action("rollout.auto_promote");
  a->set_rollout_id("ro-1a2b3c4d");
  a->set_from_state("CANARY");
  a->set_to_state("EARLY");
  a->set_reason("canary: gate passed");
  a->set_evidence_json(R"({"rings":[]})");
  return x;
}

v1::ListContentResponse SampleContent() {
  v1::ListContentResponse resp;
  v1::ContentInfo* c = resp.add_content();
  c->set_channel("rules.behavioral");
  c->set_version(42);
  c->set_sha256("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  c->set_size(1048576);
  c->add_key_ids("3b1f0c");
  c->set_uploaded_unix(kStart - 600);
  c->set_uploaded_by("alice");
  c->set_description("July rules");
  v1::ContentInfo* old = resp.add_content();
  old->set_channel("rules.behavioral");
  old->set_version(41);
  old->set_sha256("60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752");
  old->set_size(1000);
  old->add_key_ids("3b1f0c");
  old->set_uploaded_unix(kStart - 86400);
  old->set_uploaded_by("bob");
  old->set_revoked(true);
  return resp;
}

v1::ListAgentsResponse SampleAgents() {
  v1::ListAgentsResponse resp;
  resp.set_total(1000);
  v1::AgentInfo* a = resp.add_agents();
  a->set_agent_id("agent-0001");
  a->set_hostname("host-0001");
  a->set_ring("canary");
  (*a->mutable_labels())["group"] = "payments";
  (*a->mutable_labels())["dc"] = "fra1";
  v1::ChannelVersionInfo* v = a->add_versions();
  v->set_channel("rules.behavioral");
  v->set_version(42);
  a->set_enrolled_unix(kStart - 86400);
  a->set_last_seen_unix(kStart + 30);
  v1::AgentInfo* b = resp.add_agents();
  b->set_agent_id("agent-0002");
  b->set_ring("broad");
  return resp;
}

v1::ListAuditLogResponse SampleAudit() {
  v1::ListAuditLogResponse resp;
  *resp.add_entries() = Entry(9, (kStart + 7325) * 1000, "bob", "rollout.halt", "EARLY", "HALTED",
                              "crash reports from early", R"({"rings":[]})");
  *resp.add_entries() = Entry(7, (kStart + 3600) * 1000 + 250, "controller", "rollout.auto_promote",
                              "CANARY", "EARLY", "canary: gate passed", R"({"rings":[]})");
  *resp.add_entries() =
      Entry(5, kStart * 1000, "alice", "rollout.start", "", "CANARY", "", "not json");
  return resp;
}

v1::Policy SamplePolicy() {
  v1::Policy p;
  p.set_name("default");
  p.set_version(2);
  p.set_created_by("alice");
  p.set_created_unix(kStart - 3600);
  p.set_policy_json(R"({"canary":{"min_bake_seconds":3600,"min_healthy":10}})");
  return p;
}

v1::ListPinsResponse SamplePins() {
  v1::ListPinsResponse resp;
  v1::Pin* p = resp.add_pins();
  p->set_label_key("group");
  p->set_label_value("payments");
  p->set_channel("rules.behavioral");
  p->set_policy("n-1");
  return resp;
}

v1::ListTrustResponse SampleTrust() {
  const std::string root_key = "65c05a56548f0c9ed75f46d1c5fec85c33a26d17cf67d2b32963c2ea22c7808a";
  const std::string new_root_key =
      "ff2c85be26dd53c5ebf98e4f2179eec1cb3092f67b717be1a2ecd73d64e6615d";
  const std::string release_key =
      "b82f647555bf08b4c03e4ec921a83f77c4bd4f8f2603508be8ff8986108be378";
  v1::ListTrustResponse resp;
  *resp.add_roots() = Trust("root", 1, "", kStart + 365 * 86400, {root_key}, "CAE=");
  *resp.add_roots() = Trust("root", 2, "", kStart + 400 * 86400, {new_root_key, root_key}, "CAI=");
  *resp.add_floors() = Trust("floor", 40, "rules.behavioral", 0, {release_key}, "CgE=");
  return resp;
}

CliRun Ringctl(const std::vector<std::string>& args) {
  std::vector<std::string> full = {"ringctl"};
  full.insert(full.end(), args.begin(), args.end());
  // The fake servers speak plaintext on loopback.
  if (std::find(args.begin(), args.end(), "--ca") == args.end()) {
    full.push_back("--insecure");
  }
  std::ostringstream out, err;
  CliRun r;
  r.code = RunRingctl(full, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

}  // namespace ringwarden::cli_testing

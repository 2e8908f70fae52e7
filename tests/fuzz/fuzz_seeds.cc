// fuzz_seeds writes the seeds of the service fuzz targets: one valid request
// per method (and a few hostile ones), as [method byte][caller byte][request].
//
//   build-asan/tests/fuzz/fuzz_seeds tests/fuzz/corpus
//
// The output is committed; run it again after adding a method or a field.
#include <cstdint>
#include <fstream>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/admin_token.h"
#include "ringwarden/v1/admin.pb.h"
#include "ringwarden/v1/agent.pb.h"
#include "ringwarden/v1/content.pb.h"
#include "server/core/policy_json.h"
#include "tests/fuzz/service_world.h"

namespace ringwarden::fuzzing {
namespace {

std::string g_dir;

void WriteRaw(const std::string& target, const std::string& name, const std::string& bytes) {
  const std::string path = absl::StrCat(g_dir, "/", target, "/", name);
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  if (!out) {
    std::cerr << "cannot write " << path << "\n";
    std::exit(1);
  }
}

void Write(const std::string& target, const std::string& name, int method, Caller caller,
           const google::protobuf::Message& request) {
  std::string bytes;
  bytes.push_back(static_cast<char>(method));
  bytes.push_back(static_cast<char>(caller));
  WriteRaw(target, name, bytes + request.SerializeAsString());
}

void AgentSeeds() {
  const std::string t = "agent_service_fuzz";
  v1::EnrollRequest enroll;
  enroll.set_agent_id("host-9");
  enroll.set_enrollment_token(kFuzzEnrollmentToken);
  enroll.set_hostname("host-9.example");
  (*enroll.mutable_labels())["os"] = "linux";
  Write(t, "enroll", 0, Caller::kNone, enroll);
  enroll.set_enrollment_token("rwe_0011223344556677_short");
  Write(t, "enroll_bad_token", 0, Caller::kNone, enroll);
  v1::RenewCredentialRequest renew;
  renew.set_agent_id(kFuzzAgent);
  Write(t, "renew", 1, Caller::kAgent, renew);
  v1::GetAssignmentRequest poll;
  poll.set_agent_id(kFuzzAgent);
  poll.set_root_version(1);
  v1::ChannelVersion* cv = poll.add_current();
  cv->set_channel(kFuzzChannel);
  cv->set_version(2);
  poll.add_channels(kFuzzChannel);
  Write(t, "get_assignment", 2, Caller::kAgent, poll);
  Write(t, "get_assignment_other_agent", 2, Caller::kOtherAgent, poll);
  v1::FetchContentRequest fetch;
  fetch.set_agent_id(kFuzzAgent);
  fetch.set_channel(kFuzzChannel);
  fetch.set_version(1);
  Write(t, "fetch", 3, Caller::kAgent, fetch);
  fetch.set_offset(-5);
  Write(t, "fetch_negative_offset", 3, Caller::kAgent, fetch);
  v1::ReportTelemetryRequest report;
  report.set_agent_id(kFuzzAgent);
  report.set_batch_seq(1'700'000'000'000'000);
  v1::TelemetryEvent* e = report.add_events();
  e->set_observed_unix_ms(1'700'000'000'000);
  e->mutable_heartbeat()->set_boot_id("boot-\xff\xfe");
  *e->mutable_heartbeat()->add_versions() = *cv;
  e = report.add_events();
  e->mutable_apply()->set_channel(kFuzzChannel);
  e->mutable_apply()->set_version(1);
  e->mutable_apply()->set_detail("applied");
  e = report.add_events();
  e->mutable_crash()->set_detail("segfault \xc0\x80");
  e = report.add_events();
  e->mutable_health()->set_kind("cpu_high");
  e->mutable_health()->set_detail("load 12");
  Write(t, "report_telemetry_bad_utf8", 4, Caller::kAgent, report);  // protobuf refuses it
  report.mutable_events(0)->mutable_heartbeat()->set_boot_id("boot-1");
  report.mutable_events(2)->mutable_crash()->set_detail("segfault \xE2\x82\xAC");
  Write(t, "report_telemetry", 4, Caller::kAgent, report);
}

void AdminSeeds() {
  const std::string t = "admin_service_fuzz";
  v1::UploadContentRequest upload;
  upload.set_envelope(R"({"payloadType":"x","payload":"eA==","signatures":[{"sig":"AA=="}]})");
  upload.set_payload("payload");
  Write(t, "upload_content", 0, Caller::kReleaser, upload);
  v1::ListContentRequest list_content;
  Write(t, "list_content", 1, Caller::kViewer, list_content);
  v1::StartRolloutRequest start;
  start.set_channel(kFuzzChannel);
  start.set_version(1);
  start.set_reason("fuzz");
  start.set_supersede(true);
  Write(t, "start_rollout", 2, Caller::kReleaser, start);
  v1::GetRolloutRequest get;
  get.set_id("ro-1");
  Write(t, "get_rollout", 3, Caller::kViewer, get);
  v1::ListRolloutsRequest list;
  list.set_channel(kFuzzChannel);
  list.set_limit(5);
  Write(t, "list_rollouts", 4, Caller::kViewer, list);
  v1::RolloutActionRequest act;
  act.set_id("ro-1");
  act.set_reason("fuzz");
  act.set_force(true);
  for (int m = 5; m <= 8; ++m) {
    Write(t, absl::StrCat("rollout_action_", m), m, Caller::kAdmin, act);
  }
  v1::EmergencyStopRequest stop;
  stop.set_reason("fuzz");
  Write(t, "emergency_stop", 9, Caller::kAdmin, stop);
  v1::SetPinRequest pin;
  pin.set_label_key("team");
  pin.set_label_value("red");
  pin.set_channel(kFuzzChannel);
  Write(t, "set_pin", 10, Caller::kReleaser, pin);
  Write(t, "list_pins", 11, Caller::kViewer, v1::ListPinsRequest());
  Write(t, "explain_rollout", 12, Caller::kViewer, get);
  v1::SetPolicyRequest policy;
  policy.set_name("strict");
  policy.set_policy_json(R"({"canary":{"min_bake_seconds":60},"two_person":true})");
  policy.set_reason("fuzz");
  Write(t, "set_policy", 13, Caller::kAdmin, policy);
  v1::GetPolicyRequest get_policy;
  get_policy.set_name("default");
  Write(t, "get_policy", 14, Caller::kViewer, get_policy);
  v1::ListAgentsRequest agents;
  agents.set_ring("canary");
  Write(t, "list_agents", 15, Caller::kViewer, agents);
  v1::CreateEnrollmentTokenRequest create;
  create.set_ttl_seconds(3600);
  create.set_max_uses(3);
  (*create.mutable_labels())["ring"] = "early";
  create.set_description("fuzz");
  Write(t, "create_enrollment_token", 16, Caller::kAdmin, create);
  Write(t, "list_enrollment_tokens", 17, Caller::kAdmin, v1::ListEnrollmentTokensRequest());
  v1::RevokeEnrollmentTokenRequest revoke_token;
  revoke_token.set_id("00112233445566ff");
  revoke_token.set_reason("fuzz");
  Write(t, "revoke_enrollment_token", 18, Caller::kAdmin, revoke_token);
  v1::LabelAgentRequest label;
  label.set_agent_id(kFuzzAgent);
  (*label.mutable_labels())["ring"] = "broad";
  label.set_reason("fuzz");
  Write(t, "label_agent", 19, Caller::kAdmin, label);
  v1::AgentActionRequest agent_action;
  agent_action.set_agent_id(kFuzzAgent);
  agent_action.set_reason("fuzz");
  Write(t, "revoke_agent", 20, Caller::kAdmin, agent_action);
  Write(t, "reset_agent", 21, Caller::kAdmin, agent_action);
  v1::ListAuditLogRequest audit;
  audit.set_oldest_first(true);
  audit.set_limit(10);
  Write(t, "list_audit_log", 22, Caller::kViewer, audit);
  v1::UploadTrustMetadataRequest trust;
  trust.set_envelope(
      R"({"payloadType":"application/vnd.ringwarden.root+json","payload":"e30=","signatures":[{"keyid":"ab","sig":"AA=="}]})");
  trust.set_reason("fuzz");
  Write(t, "upload_root", 23, Caller::kAdmin, trust);
  Write(t, "upload_floor", 24, Caller::kReleaser, trust);
  Write(t, "list_trust", 25, Caller::kViewer, v1::ListTrustRequest());
  v1::ListApprovalsRequest approvals;
  approvals.set_include_decided(true);
  Write(t, "list_approvals", 26, Caller::kViewer, approvals);
  v1::DecideApprovalRequest decide;
  decide.set_id("ap-1");
  decide.set_reason("fuzz");
  Write(t, "approve_request", 27, Caller::kAdmin, decide);
  Write(t, "reject_request", 28, Caller::kAdmin, decide);
  v1::CreateAdminTokenRequest create_admin;
  create_admin.set_name("ci@example");
  create_admin.set_role("releaser");
  create_admin.set_ttl_seconds(3600);
  create_admin.set_reason("fuzz");
  Write(t, "create_admin_token", 29, Caller::kAdmin, create_admin);
  create_admin.set_role("admin");
  Write(t, "create_admin_token_above_own_role", 29, Caller::kReleaser, create_admin);
  Write(t, "list_admin_tokens", 30, Caller::kAdmin, v1::ListAdminTokensRequest());
  v1::RevokeAdminTokenRequest revoke_admin;
  revoke_admin.set_id("000102030405");
  revoke_admin.set_force(true);
  revoke_admin.set_reason("fuzz");
  Write(t, "revoke_admin_token", 31, Caller::kAdmin, revoke_admin);
}

void ParserSeeds() {
  v1::ContentManifest m;
  m.set_channel(kFuzzChannel);
  m.set_version(3);
  m.set_sha256(std::string(64, 'a'));
  m.set_size(10);
  m.set_created_unix(1'700'000'000);
  m.set_description("release 3");
  WriteRaw("manifest_codec_fuzz", "valid", m.SerializeAsString());
  m.set_version(-1);
  m.set_size(-1);
  m.set_channel("UPPER case");
  WriteRaw("manifest_codec_fuzz", "negative", m.SerializeAsString());
  WriteRaw("manifest_codec_fuzz", "truncated", m.SerializeAsString().substr(0, 9));
  WriteRaw("secret_token_fuzz", "admin_token_valid",
           "\x01" + FormatAdminToken(AdminTokenParts{"0a1b2c3d4e5f", std::string(32, 'k')}));
  WriteRaw("policy_json_fuzz", "default", PolicyToJson(DefaultRolloutPolicy()).dump(2));
}

}  // namespace
}  // namespace ringwarden::fuzzing

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_seeds CORPUS_DIR\n";
    return 2;
  }
  ringwarden::fuzzing::g_dir = argv[1];
  ringwarden::fuzzing::AgentSeeds();
  ringwarden::fuzzing::AdminSeeds();
  ringwarden::fuzzing::ParserSeeds();
  return 0;
}

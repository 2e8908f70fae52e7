#include "cli/output.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ringwarden {
namespace {

using nlohmann::json;

void PrintJson(const json& doc, std::ostream& out) { out << doc.dump() << "\n"; }

// Number reads a number out of evidence without trusting its shape.
double Number(const json& object, const char* key) {
  if (!object.is_object()) {
    return 0;
  }
  auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<double>() : 0;
}

std::string Count(const json& object, const char* key) {
  return absl::StrCat(static_cast<int64_t>(Number(object, key)));
}

const json& Member(const json& object, const char* key) {
  static const json* const kNull = new json();
  if (!object.is_object()) {
    return *kNull;
  }
  auto it = object.find(key);
  return it == object.end() ? *kNull : *it;
}

std::string StringMember(const json& object, const char* key) {
  const json& v = Member(object, key);
  return v.is_string() ? v.get<std::string>() : "";
}

// The stage ring of each active state, and the order of rings.
int RingIndex(const std::string& ring) {
  if (ring == "canary") {
    return 0;
  }
  if (ring == "early") {
    return 1;
  }
  if (ring == "broad") {
    return 2;
  }
  return -1;
}

int StageIndex(v1::RolloutState state) {
  switch (state) {
    case v1::CANARY:
      return 0;
    case v1::EARLY:
      return 1;
    case v1::BROAD:
      return 2;
    default:
      return -1;
  }
}

std::string Percent(double fraction) {
  return absl::StrCat(static_cast<int>(fraction * 100 + 0.5), "%");
}

// RingPhase says where a ring stands in the rollout: done, active, waiting, ...
std::string RingPhase(const v1::Rollout& r, const std::string& ring) {
  const int i = RingIndex(ring);
  switch (r.state()) {
    case v1::PENDING:
      return "waiting (rollout held)";
    case v1::COMPLETED:
      return "done";
    case v1::ROLLED_BACK:
      return "rolled back";
    case v1::CANCELLED:
      return "cancelled";
    case v1::HALTED: {
      const int h = StageIndex(r.halted_from());
      return i < h ? "done" : i == h ? "HALTED" : "waiting";
    }
    default:
      break;
  }
  const int s = StageIndex(r.state());
  if (i < 0 || s < 0) {
    return "";
  }
  if (i < s) {
    return "done";
  }
  if (i > s) {
    return "waiting";
  }
  if (r.state() == v1::BROAD && r.broad_fraction() < 1.0) {
    return absl::StrCat("active, wave ", r.broad_wave() + 1, ": ", Percent(r.broad_fraction()));
  }
  return "active";
}

std::string Progress(const v1::RingProgress& p) {
  std::string s = absl::StrCat(p.applied(), "/", p.targeted(), " applied, ", p.healthy(),
                               " healthy of ", p.targeted());
  if (p.failed() > 0) {
    absl::StrAppend(&s, ", ", p.failed(), " failed");
  }
  return s;
}

std::string Change(const std::string& from, const std::string& to) {
  if (from.empty() && to.empty()) {
    return "-";
  }
  return absl::StrCat(from.empty() ? "new" : from, " -> ", to);
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

// ShortKeyIds abbreviates key ids to 12 hex digits, as tables show digests.
std::string ShortKeyIds(const google::protobuf::RepeatedPtrField<std::string>& ids) {
  std::vector<std::string> short_ids;
  for (const std::string& id : ids) {
    short_ids.push_back(id.substr(0, 12));
  }
  return short_ids.empty() ? "-" : absl::StrJoin(short_ids, ", ");
}

void PrintRolloutTable(const v1::Rollout& r, std::ostream& out) {
  std::string state = StateName(r.state());
  if (r.state() == v1::HALTED) {
    absl::StrAppend(&state, " (in ", StateName(r.halted_from()), ")");
  }
  out << "rollout " << r.id() << "  " << r.channel() << " v" << r.version() << "  " << state
      << "\n";
  out << "previous v" << r.previous_version() << ", revision " << r.revision() << ", policy "
      << r.policy_name() << " v" << r.policy_version() << ", started "
      << FormatTime(r.created_unix()) << " by " << r.created_by() << "\n";
  if (r.state() == v1::BROAD && r.broad_fraction() < 1.0) {
    out << "broad wave " << r.broad_wave() + 1 << ": " << Percent(r.broad_fraction())
        << " of the broad ring\n";
  }
  if (r.has_exposure() && r.exposure().enabled()) {
    out << "exposure in " << r.exposure().ring() << ": " << r.exposure().text() << "\n";
  }
  Table t({"RING", "TARGETED", "APPLIED", "HEALTHY", "FAILED"});
  for (const v1::RingProgress& p : r.rings()) {
    t.Add({p.ring(), absl::StrCat(p.targeted()), absl::StrCat(p.applied()),
           absl::StrCat(p.healthy()), absl::StrCat(p.failed())});
  }
  t.Print(out);
}

// PrintEvidence prints the parts of a decision's evidence a release engineer reads.
void PrintEvidence(const json& e, std::ostream& out) {
  const json& treated = Member(e, "treated");
  const json& control = Member(e, "control");
  if (treated.is_object() && control.is_object()) {
    out << "  treated: " << Count(treated, "attempted") << " tried, " << Count(treated, "healthy")
        << " healthy, " << Count(treated, "pending") << " pending, " << Count(treated, "crashed")
        << " crashed (" << Count(treated, "process_crashed") << " process crash, "
        << Count(treated, "unclean_shutdowns") << " unclean shutdown), "
        << Count(treated, "unhealthy") << " unhealthy (" << Count(treated, "health_events")
        << " health events), " << Count(treated, "silent") << " silent, "
        << Count(treated, "reverted") << " reverted, " << Count(treated, "apply_failed")
        << " failed to apply\n";
    out << "  control: " << Count(control, "failed") << " of " << Count(control, "agents")
        << " failed\n";
  }
  const json& test = Member(e, "test");
  if (test.is_object()) {
    out << "  test: " << StringMember(test, "name")
        << ", halt at LLR >= " << Number(test, "halt_bound")
        << ", healthy at LLR <= " << Number(test, "accept_bound") << "; vs control LLR "
        << Number(Member(test, "vs_control"), "llr") << ", vs baseline LLR "
        << Number(Member(test, "vs_baseline"), "llr") << "\n";
  }
  const json& waiting = Member(e, "waiting_for");
  if (waiting.is_array() && !waiting.empty()) {
    std::vector<std::string> w;
    for (const json& item : waiting) {
      w.push_back(item.is_string() ? item.get<std::string>() : item.dump());
    }
    out << "  waiting for: " << absl::StrJoin(w, "; ") << "\n";
  }
}

}  // namespace

std::string StateName(v1::RolloutState state) {
  return state == v1::ROLLOUT_STATE_UNSPECIFIED ? "" : v1::RolloutState_Name(state);
}

bool IsFinalState(v1::RolloutState state) {
  return state == v1::COMPLETED || state == v1::ROLLED_BACK || state == v1::CANCELLED;
}

std::string FormatTime(int64_t unix_seconds) {
  if (unix_seconds == 0) {
    return "-";
  }
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixSeconds(unix_seconds),
                          absl::UTCTimeZone());
}

std::string FormatElapsed(absl::Duration d) {
  int64_t s = std::max<int64_t>(0, absl::ToInt64Seconds(d));
  if (s < 60) {
    return absl::StrCat("+", s, "s");
  }
  auto two = [](int64_t v) { return absl::StrCat(v < 10 ? "0" : "", v); };
  if (s < 3600) {
    return absl::StrCat("+", s / 60, "m", two(s % 60), "s");
  }
  if (s < 86400) {
    return absl::StrCat("+", s / 3600, "h", two(s % 3600 / 60), "m");
  }
  return absl::StrCat("+", s / 86400, "d", two(s % 86400 / 3600), "h");
}

void Table::Print(std::ostream& out) const {
  std::vector<size_t> width;
  for (const auto& row : rows_) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  }
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) {
        line += std::string(width[i] - row[i].size() + 2, ' ');
      }
    }
    // An empty last cell would leave padding behind.
    line.erase(line.find_last_not_of(' ') + 1);
    out << line << "\n";
  }
}

json ParseEmbeddedJson(const std::string& text) {
  if (text.empty()) {
    return nullptr;
  }
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return text;  // keep what the server said rather than lose it
  }
  return doc;
}

json RolloutJson(const v1::Rollout& r) {
  json rings = json::array();
  for (const v1::RingProgress& p : r.rings()) {
    rings.push_back({{"ring", p.ring()},
                     {"targeted", p.targeted()},
                     {"applied", p.applied()},
                     {"healthy", p.healthy()},
                     {"failed", p.failed()}});
  }
  json out = {{"id", r.id()},
              {"channel", r.channel()},
              {"version", r.version()},
              {"state", StateName(r.state())},
              {"halted_from", StateName(r.halted_from())},
              {"previous_version", r.previous_version()},
              {"revision", r.revision()},
              {"created_by", r.created_by()},
              {"created_unix", r.created_unix()},
              {"updated_unix", r.updated_unix()},
              {"rings", rings},
              {"policy", r.policy_name()},
              {"policy_version", r.policy_version()},
              {"broad_wave", r.broad_wave()},
              {"broad_fraction", r.broad_fraction()}};
  if (r.has_exposure()) {
    const v1::Exposure& e = r.exposure();
    out["exposure"] = {{"enabled", e.enabled()},
                       {"ring", e.ring()},
                       {"share_hosts", e.share_hosts()},
                       {"admitted", e.admitted()},
                       {"proven", e.proven()},
                       {"unproven", e.unproven()},
                       {"failed", e.failed()},
                       {"frozen", e.frozen()},
                       {"complete", e.complete()},
                       {"next_step", e.next_step()},
                       {"next_step_unix", e.next_step_unix()},
                       {"text", e.text()}};
  }
  return out;
}

json ContentJson(const v1::ContentInfo& c) {
  return {{"channel", c.channel()},
          {"version", c.version()},
          {"sha256", c.sha256()},
          {"size", c.size()},
          {"key_ids", std::vector<std::string>(c.key_ids().begin(), c.key_ids().end())},
          {"revoked", c.revoked()},
          {"description", c.description()},
          {"uploaded_by", c.uploaded_by()},
          {"uploaded_unix", c.uploaded_unix()}};
}

json AgentJson(const v1::AgentInfo& a) {
  json versions = json::object();
  for (const auto& v : a.versions()) {
    versions[v.channel()] = v.version();
  }
  return {{"agent_id", a.agent_id()},
          {"hostname", a.hostname()},
          {"ring", a.ring()},
          {"labels", std::map<std::string, std::string>(a.labels().begin(), a.labels().end())},
          {"versions", versions},
          {"enrolled_unix", a.enrolled_unix()},
          {"last_seen_unix", a.last_seen_unix()},
          {"reported_labels", std::map<std::string, std::string>(a.reported_labels().begin(),
                                                                 a.reported_labels().end())},
          {"revoked_unix", a.revoked_unix()},
          {"enrolled_with", a.enrolled_with()}};
}

json AuditEntryJson(const v1::AuditEntry& e) {
  return {{"id", e.id()},
          {"at_unix_ms", e.at_unix_ms()},
          {"actor", e.actor()},
          {"action", e.action()},
          {"rollout_id", e.rollout_id()},
          {"from_state", e.from_state()},
          {"to_state", e.to_state()},
          {"reason", e.reason()},
          {"evidence", ParseEmbeddedJson(e.evidence_json())}};
}

json DecisionJson(const v1::RingDecision& d) {
  return {{"ring", d.ring()},
          {"kind", d.kind()},
          {"reason", d.reason()},
          {"gate_passed", d.gate_passed()},
          {"summary", d.summary()},
          {"evaluated_unix_ms", d.evaluated_unix_ms()},
          {"evidence", ParseEmbeddedJson(d.evidence_json())}};
}

json PolicyJson(const v1::Policy& p) {
  return {{"name", p.name()},
          {"version", p.version()},
          {"created_by", p.created_by()},
          {"created_unix", p.created_unix()},
          {"policy", ParseEmbeddedJson(p.policy_json())}};
}

json PinJson(const v1::Pin& p) {
  return {{"label", absl::StrCat(p.label_key(), "=", p.label_value())},
          {"label_key", p.label_key()},
          {"label_value", p.label_value()},
          {"channel", p.channel()},
          {"policy", p.policy()}};
}

json TrustMetadataJson(const v1::TrustMetadata& m) {
  json envelope = std::string(m.envelope());
  try {
    (void)envelope.dump();
  } catch (const json::type_error&) {
    envelope = "";  // not UTF-8, so not the JSON the server verified; never expected
  }
  return {{"kind", m.kind()},
          {"version", m.version()},
          {"channel", m.channel()},
          {"key_ids", std::vector<std::string>(m.key_ids().begin(), m.key_ids().end())},
          {"expires_unix", m.expires_unix()},
          {"envelope", envelope}};
}

void RenderRollout(const v1::Rollout& rollout, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    PrintJson(RolloutJson(rollout), out);
    return;
  }
  PrintRolloutTable(rollout, out);
}

void RenderRolloutList(const v1::ListRolloutsResponse& response, OutputFormat format,
                       std::ostream& out) {
  if (format == OutputFormat::kJson) {
    json arr = json::array();
    for (const auto& r : response.rollouts()) {
      arr.push_back(RolloutJson(r));
    }
    PrintJson(arr, out);
    return;
  }
  Table t({"ID", "CHANNEL", "VERSION", "STATE", "PREVIOUS", "CREATED", "BY"});
  for (const auto& r : response.rollouts()) {
    std::string state = StateName(r.state());
    if (r.state() == v1::HALTED) {
      absl::StrAppend(&state, " (", StateName(r.halted_from()), ")");
    }
    t.Add({r.id(), r.channel(), absl::StrCat(r.version()), state,
           absl::StrCat(r.previous_version()), FormatTime(r.created_unix()), r.created_by()});
  }
  t.Print(out);
}

void RenderContentList(const v1::ListContentResponse& response, OutputFormat format,
                       std::ostream& out) {
  if (format == OutputFormat::kJson) {
    json arr = json::array();
    for (const auto& c : response.content()) {
      arr.push_back(ContentJson(c));
    }
    PrintJson(arr, out);
    return;
  }
  Table t({"CHANNEL", "VERSION", "SIZE", "SHA256", "REVOKED", "UPLOADED", "BY"});
  for (const auto& c : response.content()) {
    t.Add({c.channel(), absl::StrCat(c.version()), absl::StrCat(c.size()), c.sha256().substr(0, 12),
           c.revoked() ? "yes" : "no", FormatTime(c.uploaded_unix()), c.uploaded_by()});
  }
  t.Print(out);
}

void RenderUploaded(const v1::ContentInfo& c, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    PrintJson(ContentJson(c), out);
    return;
  }
  out << "uploaded " << c.channel() << " v" << c.version() << " (" << c.size() << " bytes, sha256 "
      << c.sha256().substr(0, 12) << ")\n";
}

void RenderAgents(const v1::ListAgentsResponse& response, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    json arr = json::array();
    for (const auto& a : response.agents()) {
      arr.push_back(AgentJson(a));
    }
    PrintJson({{"total", response.total()}, {"agents", arr}}, out);
    return;
  }
  Table t({"AGENT", "RING", "VERSIONS", "LAST SEEN", "LABELS"});
  for (const auto& a : response.agents()) {
    std::vector<std::string> versions, labels;
    for (const auto& v : a.versions()) {
      versions.push_back(absl::StrCat(v.channel(), "=v", v.version()));
    }
    std::map<std::string, std::string> sorted(a.labels().begin(), a.labels().end());
    for (const auto& [k, v] : sorted) {
      labels.push_back(absl::StrCat(k, "=", v));
    }
    t.Add({a.agent_id(), a.ring(), versions.empty() ? "-" : absl::StrJoin(versions, ","),
           FormatTime(a.last_seen_unix()), absl::StrJoin(labels, ",")});
  }
  t.Print(out);
  out << response.agents_size() << " of " << response.total() << " agents\n";
}

void RenderAudit(const v1::ListAuditLogResponse& response, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    json arr = json::array();
    for (const auto& e : response.entries()) {
      arr.push_back(AuditEntryJson(e));
    }
    PrintJson(arr, out);
    return;
  }
  Table t({"TIME", "ACTOR", "ACTION", "ROLLOUT", "CHANGE", "REASON"});
  for (const auto& e : response.entries()) {
    t.Add({FormatTime(e.at_unix_ms() / 1000), e.actor(), e.action(), OrDash(e.rollout_id()),
           Change(e.from_state(), e.to_state()), OrDash(e.reason())});
  }
  t.Print(out);
}

void RenderHistory(const std::vector<v1::AuditEntry>& oldest_first, OutputFormat format,
                   std::ostream& out) {
  if (format == OutputFormat::kJson) {
    json arr = json::array();
    for (const auto& e : oldest_first) {
      arr.push_back(AuditEntryJson(e));
    }
    PrintJson(arr, out);
    return;
  }
  if (oldest_first.empty()) {
    out << "no audit entries for this rollout\n";
    return;
  }
  const int64_t start_ms = oldest_first.front().at_unix_ms();
  Table t({"TIME", "ELAPSED", "ACTOR", "ACTION", "CHANGE", "REASON"});
  for (const auto& e : oldest_first) {
    t.Add({FormatTime(e.at_unix_ms() / 1000),
           FormatElapsed(absl::Milliseconds(e.at_unix_ms() - start_ms)), e.actor(), e.action(),
           Change(e.from_state(), e.to_state()), OrDash(e.reason())});
  }
  t.Print(out);
}

void RenderExplain(const v1::ExplainRolloutResponse& response, OutputFormat format,
                   std::ostream& out) {
  if (format == OutputFormat::kJson) {
    json decisions = json::array();
    for (const auto& d : response.decisions()) {
      decisions.push_back(DecisionJson(d));
    }
    json actions = json::array();
    for (const auto& a : response.automatic_actions()) {
      actions.push_back(AuditEntryJson(a));
    }
    PrintJson({{"rollout", RolloutJson(response.rollout())},
               {"decisions", decisions},
               {"automatic_actions", actions}},
              out);
    return;
  }
  PrintRolloutTable(response.rollout(), out);
  if (response.decisions().empty()) {
    out << "\nno automatic decision yet\n";
  }
  for (const auto& d : response.decisions()) {
    out << "\n" << d.summary() << "\n";
    out << "  decision " << d.kind() << " (" << d.reason() << "), evaluated "
        << FormatTime(d.evaluated_unix_ms() / 1000) << "\n";
    PrintEvidence(ParseEmbeddedJson(d.evidence_json()), out);
  }
  if (!response.automatic_actions().empty()) {
    out << "\nautomatic actions:\n";
    for (const auto& a : response.automatic_actions()) {
      out << "  " << FormatTime(a.at_unix_ms() / 1000) << "  " << a.action() << "  "
          << a.from_state() << " -> " << a.to_state() << "\n";
    }
  }
}

void RenderPolicy(const v1::Policy& policy, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    PrintJson(PolicyJson(policy), out);
    return;
  }
  const json body = ParseEmbeddedJson(policy.policy_json());
  out << "policy " << policy.name() << " v" << policy.version() << " (set by "
      << policy.created_by() << " " << FormatTime(policy.created_unix()) << ")\n"
      << (body.is_string() ? body.get<std::string>() : body.dump(2)) << "\n";
}

void RenderPins(const v1::ListPinsResponse& response, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    json arr = json::array();
    for (const auto& p : response.pins()) {
      arr.push_back(PinJson(p));
    }
    PrintJson(arr, out);
    return;
  }
  Table t({"LABEL", "CHANNEL", "POLICY"});
  for (const auto& p : response.pins()) {
    t.Add({absl::StrCat(p.label_key(), "=", p.label_value()), p.channel(), p.policy()});
  }
  t.Print(out);
}

void RenderPin(const v1::Pin& pin, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    PrintJson(PinJson(pin), out);
    return;
  }
  out << "pinned " << pin.label_key() << "=" << pin.label_value() << " on " << pin.channel()
      << " to " << pin.policy() << "\n";
}

void RenderEmergencyStop(bool active, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    PrintJson({{"emergency_stop", active}}, out);
    return;
  }
  out << (active ? "emergency stop ACTIVE: agents apply nothing new\n" : "emergency stop lifted\n");
}

void RenderTrustUploaded(const v1::TrustMetadata& m, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    PrintJson(TrustMetadataJson(m), out);
    return;
  }
  if (m.kind() == "floor") {
    out << "uploaded floor " << m.channel() << " >= v" << m.version() << " (signed by "
        << ShortKeyIds(m.key_ids()) << "); rollouts and pins below v" << m.version()
        << " are refused from now on\n";
    return;
  }
  out << "uploaded " << m.kind() << " v" << m.version() << " (expires "
      << FormatTime(m.expires_unix()) << ", signed by " << ShortKeyIds(m.key_ids())
      << "); agents fetch it with their next poll\n";
}

void RenderTrustList(const v1::ListTrustResponse& response, OutputFormat format,
                     std::ostream& out) {
  if (format == OutputFormat::kJson) {
    json roots = json::array(), floors = json::array();
    for (const auto& m : response.roots()) {
      roots.push_back(TrustMetadataJson(m));
    }
    for (const auto& m : response.floors()) {
      floors.push_back(TrustMetadataJson(m));
    }
    PrintJson({{"roots", roots}, {"floors", floors}}, out);
    return;
  }
  if (response.roots().empty()) {
    out << "no root stored\n";
  } else {
    out << "roots\n";
    Table t({"VERSION", "EXPIRES", "SIGNED BY"});
    for (const auto& m : response.roots()) {
      t.Add({absl::StrCat(m.version()), FormatTime(m.expires_unix()), ShortKeyIds(m.key_ids())});
    }
    t.Print(out);
  }
  out << "\n";
  if (response.floors().empty()) {
    out << "no floor stored\n";
    return;
  }
  out << "floors\n";
  Table t({"CHANNEL", "MIN VERSION", "SIGNED BY"});
  for (const auto& m : response.floors()) {
    t.Add({m.channel(), absl::StrCat(m.version()), ShortKeyIds(m.key_ids())});
  }
  t.Print(out);
}

std::string ProgressBar(const v1::RingProgress& p, int width) {
  const int64_t targeted = std::max<int64_t>(0, p.targeted());
  auto cells = [&](int64_t n) -> int {
    if (targeted == 0) {
      return 0;
    }
    n = std::clamp<int64_t>(n, 0, targeted);
    return static_cast<int>(n * width / targeted);  // floor: a full bar means all agents
  };
  const int applied = cells(p.applied());
  const int healthy = std::min(cells(p.healthy()), applied);
  const int failed = std::min(cells(p.failed()), width - applied);
  std::string bar = "[";
  bar.append(healthy, '#');
  bar.append(applied - healthy, '+');
  bar.append(failed, 'x');
  bar.append(width - applied - failed, '-');
  bar += "]";
  return bar;
}

json ApprovalJson(const v1::ApprovalRequest& a) {
  return {{"id", a.id()},
          {"kind", a.kind()},
          {"steps", std::vector<std::string>(a.steps().begin(), a.steps().end())},
          {"summary", a.summary()},
          {"requested_by", a.requested_by()},
          {"needed_role", a.needed_role()},
          {"reason", a.reason()},
          {"state", a.state()},
          {"requested_unix", a.requested_unix()},
          {"expires_unix", a.expires_unix()},
          {"decided_by", a.decided_by()},
          {"decided_unix", a.decided_unix()},
          {"decision_reason", a.decision_reason()},
          {"rollout_id", a.rollout_id()},
          {"policy", a.policy()},
          {"request", ParseEmbeddedJson(a.request_json())}};
}

void RenderApprovals(const v1::ListApprovalsResponse& response, OutputFormat format,
                     std::ostream& out) {
  if (format == OutputFormat::kJson) {
    json arr = json::array();
    for (const auto& a : response.requests()) {
      arr.push_back(ApprovalJson(a));
    }
    PrintJson(arr, out);
    return;
  }
  Table t({"ID", "STATE", "ASKED BY", "STEPS", "EXPIRES", "DECIDED BY", "WHAT"});
  for (const auto& a : response.requests()) {
    t.Add({a.id(), a.state(), a.requested_by(), absl::StrJoin(a.steps(), ","),
           FormatTime(a.expires_unix()), OrDash(a.decided_by()), a.summary()});
  }
  t.Print(out);
}

void RenderApproval(const v1::ApprovalRequest& a, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    PrintJson(ApprovalJson(a), out);
    return;
  }
  out << a.id() << " " << a.state() << " by " << OrDash(a.decided_by()) << " (asked by "
      << a.requested_by() << "): " << a.summary() << "\n";
}

void RenderWatchFrame(const v1::ExplainRolloutResponse& response, absl::Time refreshed,
                      OutputFormat format, std::ostream& out) {
  const v1::Rollout& r = response.rollout();
  if (format == OutputFormat::kJson) {
    json decisions = json::array();
    for (const auto& d : response.decisions()) {
      decisions.push_back(DecisionJson(d));
    }
    PrintJson({{"refreshed_unix_ms", absl::ToUnixMillis(refreshed)},
               {"rollout", RolloutJson(r)},
               {"decisions", decisions}},
              out);
    return;
  }
  std::string state = StateName(r.state());
  if (r.state() == v1::HALTED) {
    absl::StrAppend(&state, " (in ", StateName(r.halted_from()), ")");
  }
  out << "rollout " << r.id() << "  " << r.channel() << " v" << r.version() << "  " << state
      << "\n";
  out << "previous v" << r.previous_version() << ", revision " << r.revision() << ", policy "
      << r.policy_name() << " v" << r.policy_version() << ", refreshed "
      << FormatTime(absl::ToUnixSeconds(refreshed)) << "\n\n";

  size_t name_width = 0, progress_width = 0;
  for (const auto& p : r.rings()) {
    name_width = std::max(name_width, p.ring().size());
    progress_width = std::max(progress_width, Progress(p).size());
  }
  const int stage = StageIndex(r.state());
  for (const auto& p : r.rings()) {
    const std::string progress = Progress(p);
    out << p.ring() << std::string(name_width - p.ring().size() + 2, ' ') << ProgressBar(p) << " "
        << progress << std::string(progress_width - progress.size() + 2, ' ')
        << RingPhase(r, p.ring()) << "\n";
    bool decided = false;
    for (const auto& d : response.decisions()) {
      if (d.ring() == p.ring()) {
        out << std::string(name_width + 2, ' ') << d.kind() << ": " << d.summary() << "\n";
        decided = true;
      }
    }
    if (!decided && stage >= 0 && RingIndex(p.ring()) == stage) {
      out << std::string(name_width + 2, ' ') << "no decision yet\n";
    }
  }
  switch (r.state()) {
    case v1::COMPLETED:
      out << "\nCOMPLETED: every ring runs v" << r.version() << "\n";
      break;
    case v1::HALTED:
      out << "\nHALTED in " << StateName(r.halted_from()) << ": nobody new gets v" << r.version()
          << "; see ringctl rollout explain " << r.id() << "\n";
      break;
    case v1::ROLLED_BACK:
      out << "\nROLLED_BACK: agents return to v" << r.previous_version() << "; v" << r.version()
          << " is revoked\n";
      break;
    case v1::CANCELLED:
      out << "\nCANCELLED\n";
      break;
    default:
      break;
  }
}

}  // namespace ringwarden

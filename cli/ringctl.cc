#include "cli/ringctl.h"

#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/admin_client.h"
#include "cli/signing.h"
#include "common/status_macros.h"

namespace ringwarden {
namespace {

using nlohmann::json;

// Files ringctl reads are bounded: an envelope is small, content is at most 16 MiB.
constexpr size_t kMaxReadBytes = 16 * 1024 * 1024;

absl::StatusOr<std::string> ReadFile(const std::string& path, size_t limit = kMaxReadBytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path));
  }
  std::string data;
  char buf[65536];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    data.append(buf, static_cast<size_t>(in.gcount()));
    if (data.size() > limit) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " is larger than the limit of ", limit, " bytes"));
    }
  }
  return data;
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << data;
    if (!out.flush()) {
      return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::PermissionDeniedError(absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

std::string StateName(v1::RolloutState s) {
  return s == v1::ROLLOUT_STATE_UNSPECIFIED ? "" : v1::RolloutState_Name(s);
}

std::string FormatTime(int64_t unix_seconds) {
  if (unix_seconds == 0) {
    return "-";
  }
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixSeconds(unix_seconds),
                          absl::UTCTimeZone());
}

// Table prints left-aligned columns.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(std::ostream& out) const {
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
      out << line << "\n";
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

json RolloutJson(const v1::Rollout& r) {
  json rings = json::array();
  for (const v1::RingProgress& p : r.rings()) {
    rings.push_back({{"ring", p.ring()},
                     {"targeted", p.targeted()},
                     {"applied", p.applied()},
                     {"healthy", p.healthy()},
                     {"failed", p.failed()}});
  }
  return {{"id", r.id()},
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
}

void PrintRollout(const v1::Rollout& r, std::ostream& out) {
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
    out << "broad wave " << r.broad_wave() + 1 << ": "
        << static_cast<int>(r.broad_fraction() * 100 + 0.5) << "% of the broad ring\n";
  }
  Table t({"RING", "TARGETED", "APPLIED", "HEALTHY", "FAILED"});
  for (const v1::RingProgress& p : r.rings()) {
    t.Add({p.ring(), absl::StrCat(p.targeted()), absl::StrCat(p.applied()),
           absl::StrCat(p.healthy()), absl::StrCat(p.failed())});
  }
  t.Print(out);
}

// RolloutSettled: the rollout is final, held, or every ring its stage reaches
// has applied the version on every targeted agent.
bool RolloutSettled(const v1::Rollout& r) {
  int reached = 0;
  switch (r.state()) {
    case v1::CANARY:
      reached = 1;
      break;
    case v1::EARLY:
      reached = 2;
      break;
    case v1::BROAD:
      reached = 3;
      break;
    default:
      return true;
  }
  for (int i = 0; i < reached && i < r.rings_size(); ++i) {
    if (r.rings(i).applied() < r.rings(i).targeted()) {
      return false;
    }
  }
  return true;
}

struct Globals {
  std::string server = "127.0.0.1:7600";
  std::string token;
  std::string output = "table";
  double timeout_seconds = 30;
};

}  // namespace

int ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnavailable;
    default:
      return kExitRefused;
  }
}

int RunRingctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Globals g;
  if (const char* env = std::getenv("RINGWARDEN_SERVER"); env != nullptr && *env != '\0') {
    g.server = env;
  }
  if (const char* env = std::getenv("RINGWARDEN_TOKEN"); env != nullptr) {
    g.token = env;
  }
  CLI::App app{"ringctl: drive ringwarden rollouts (sign, upload, start, watch, promote, halt, "
               "roll back, emergency-stop, audit)"};
  app.require_subcommand(1);
  // Global options may follow the subcommand (ringctl rollout list -o json);
  // subcommands created below inherit this.
  app.fallthrough();
  app.add_option("--server", g.server, "server address host:port (env RINGWARDEN_SERVER)")
      ->capture_default_str();
  app.add_option("--token", g.token, "admin bearer token (env RINGWARDEN_TOKEN)");
  app.add_option("-o,--output", g.output, "output format")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  app.add_option("--timeout", g.timeout_seconds, "seconds to wait for the server")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();

  // The action to run once parsing succeeded; returns the call's status.
  std::function<absl::Status()> action;
  auto client = [&g]() {
    return std::make_unique<AdminClient>(g.server, g.token,
                                         absl::Milliseconds(g.timeout_seconds * 1000));
  };
  auto as_json = [&g]() { return g.output == "json"; };

  // content
  CLI::App* content = app.add_subcommand("content", "sign, upload and list content")
                          ->require_subcommand(1);
  struct {
    std::string key, channel, description, out, file, envelope;
    int64_t version = 0;
  } c;
  CLI::App* sign = content->add_subcommand(
      "sign", "sign a content file offline: writes FILE.dsse.json\n  example: ringctl content "
              "sign --key release.pem --channel rules.behavioral --version 42 rules.bin");
  sign->add_option("--key", c.key, "Ed25519 private key PEM")->required();
  sign->add_option("--channel", c.channel, "channel, e.g. rules.behavioral")->required();
  sign->add_option("--version", c.version, "version number (>= 1)")->required();
  sign->add_option("--description", c.description, "free text for the manifest");
  sign->add_option("--out", c.out, "envelope path (default FILE.dsse.json)");
  sign->add_option("file", c.file, "content file")->required();
  sign->callback([&] {
    action = [&]() -> absl::Status {
      ASSIGN_OR_RETURN(std::string key, ReadFile(c.key, 64 * 1024));
      ASSIGN_OR_RETURN(std::string payload, ReadFile(c.file));
      ASSIGN_OR_RETURN(std::string envelope,
                       SignContent({key, c.channel, c.version, payload, c.description,
                                    absl::Now()}));
      const std::string path = c.out.empty() ? c.file + ".dsse.json" : c.out;
      RETURN_IF_ERROR(WriteFileAtomically(path, envelope));
      if (as_json()) {
        out << json{{"envelope", path}, {"channel", c.channel}, {"version", c.version}}.dump()
            << "\n";
      } else {
        out << "signed " << c.channel << " v" << c.version << " -> " << path << "\n";
      }
      return absl::OkStatus();
    };
  });

  CLI::App* upload = content->add_subcommand(
      "upload", "upload signed content\n  example: ringctl content upload rules.bin");
  upload->add_option("--envelope", c.envelope, "envelope path (default FILE.dsse.json)");
  upload->add_option("file", c.file, "content file")->required();
  upload->callback([&] {
    action = [&]() -> absl::Status {
      v1::UploadContentRequest req;
      ASSIGN_OR_RETURN(std::string envelope,
                       ReadFile(c.envelope.empty() ? c.file + ".dsse.json" : c.envelope,
                                64 * 1024));
      ASSIGN_OR_RETURN(std::string payload, ReadFile(c.file));
      req.set_envelope(envelope);
      req.set_payload(payload);
      ASSIGN_OR_RETURN(auto resp, client()->Call(&v1::AdminService::Stub::UploadContent, req));
      const v1::ContentInfo& info = resp.content();
      if (as_json()) {
        out << json{{"channel", info.channel()},
                    {"version", info.version()},
                    {"sha256", info.sha256()},
                    {"size", info.size()}}
                   .dump()
            << "\n";
      } else {
        out << "uploaded " << info.channel() << " v" << info.version() << " (" << info.size()
            << " bytes, sha256 " << info.sha256().substr(0, 12) << ")\n";
      }
      return absl::OkStatus();
    };
  });

  CLI::App* list_content = content->add_subcommand("list", "list uploaded content");
  list_content->add_option("--channel", c.channel, "only this channel");
  list_content->callback([&] {
    action = [&]() -> absl::Status {
      v1::ListContentRequest req;
      req.set_channel(c.channel);
      ASSIGN_OR_RETURN(auto resp, client()->Call(&v1::AdminService::Stub::ListContent, req));
      if (as_json()) {
        json arr = json::array();
        for (const auto& i : resp.content()) {
          arr.push_back({{"channel", i.channel()},
                         {"version", i.version()},
                         {"sha256", i.sha256()},
                         {"size", i.size()},
                         {"revoked", i.revoked()},
                         {"uploaded_by", i.uploaded_by()},
                         {"uploaded_unix", i.uploaded_unix()}});
        }
        out << arr.dump() << "\n";
        return absl::OkStatus();
      }
      Table t({"CHANNEL", "VERSION", "SIZE", "SHA256", "REVOKED", "UPLOADED", "BY"});
      for (const auto& i : resp.content()) {
        t.Add({i.channel(), absl::StrCat(i.version()), absl::StrCat(i.size()),
               i.sha256().substr(0, 12), i.revoked() ? "yes" : "no",
               FormatTime(i.uploaded_unix()), i.uploaded_by()});
      }
      t.Print(out);
      return absl::OkStatus();
    };
  });

  // rollout
  CLI::App* rollout = app.add_subcommand("rollout", "start and drive rollouts")
                          ->require_subcommand(1);
  struct {
    std::string channel, id, reason, policy;
    int64_t version = 0;
    int64_t expected_revision = 0;
    bool hold = false, supersede = false, active = false, force = false;
    int limit = 0;
  } r;
  CLI::App* start = rollout->add_subcommand(
      "start", "start a rollout of an uploaded version (enters CANARY)\n  example: ringctl "
               "rollout start --channel rules.behavioral --version 42");
  start->add_option("--channel", r.channel, "channel")->required();
  start->add_option("--version", r.version, "version")->required();
  start->add_flag("--hold", r.hold, "stay PENDING until promoted");
  start->add_flag("--supersede", r.supersede, "cancel the channel's unfinished rollout");
  start->add_option("--reason", r.reason, "why (audited)");
  start->add_option("--policy", r.policy, "rollout policy name (default: default)");
  auto print_rollout = [&](const v1::Rollout& ro) {
    if (as_json()) {
      out << RolloutJson(ro).dump() << "\n";
    } else {
      PrintRollout(ro, out);
    }
  };
  start->callback([&] {
    action = [&]() -> absl::Status {
      v1::StartRolloutRequest req;
      req.set_channel(r.channel);
      req.set_version(r.version);
      req.set_hold(r.hold);
      req.set_supersede(r.supersede);
      req.set_reason(r.reason);
      req.set_policy(r.policy);
      ASSIGN_OR_RETURN(auto resp, client()->Call(&v1::AdminService::Stub::StartRollout, req));
      print_rollout(resp);
      return absl::OkStatus();
    };
  });
  CLI::App* status = rollout->add_subcommand(
      "status", "show a rollout and per-ring progress\n  example: ringctl rollout status "
                "ro-1a2b3c4d");
  status->add_option("id", r.id, "rollout id")->required();
  status->callback([&] {
    action = [&]() -> absl::Status {
      v1::GetRolloutRequest req;
      req.set_id(r.id);
      ASSIGN_OR_RETURN(auto resp, client()->Call(&v1::AdminService::Stub::GetRollout, req));
      print_rollout(resp);
      return absl::OkStatus();
    };
  });
  double wait_timeout = 300;
  std::string until_state;
  CLI::App* wait = rollout->add_subcommand(
      "wait", "wait until every ring the rollout has reached runs its version (or it ends);\n"
              "with --until, until it reaches that state, printing each state change\n"
              "  example: ringctl rollout wait ro-1a2b3c4d --until COMPLETED --for 600");
  wait->add_option("id", r.id, "rollout id")->required();
  wait->add_option("--for", wait_timeout, "seconds to wait at most")->capture_default_str();
  wait->add_option("--until", until_state, "state to wait for, e.g. COMPLETED or HALTED")
      ->check(CLI::IsMember({"PENDING", "CANARY", "EARLY", "BROAD", "COMPLETED", "HALTED",
                             "ROLLED_BACK", "CANCELLED"}));
  wait->callback([&] {
    action = [&]() -> absl::Status {
      const absl::Time deadline = absl::Now() + absl::Seconds(wait_timeout);
      v1::GetRolloutRequest req;
      req.set_id(r.id);
      std::string last_seen;
      while (true) {
        ASSIGN_OR_RETURN(auto ro, client()->Call(&v1::AdminService::Stub::GetRollout, req));
        const std::string state = StateName(ro.state());
        if (!until_state.empty()) {
          const std::string position = absl::StrCat(state, "/", ro.broad_wave());
          if (position != last_seen && !as_json()) {
            out << "\n" << FormatTime(absl::ToUnixSeconds(absl::Now())) << "\n";
            PrintRollout(ro, out);
            out << std::flush;
            last_seen = position;
          }
          const bool final_state = ro.state() == v1::COMPLETED ||
                                   ro.state() == v1::ROLLED_BACK || ro.state() == v1::CANCELLED;
          if (state == until_state || final_state) {
            if (as_json()) {
              print_rollout(ro);
            }
            if (state != until_state) {
              return absl::FailedPreconditionError(absl::StrCat(
                  "rollout ", r.id, " ended ", state, ", not ", until_state));
            }
            return absl::OkStatus();
          }
        } else if (RolloutSettled(ro)) {
          print_rollout(ro);
          return absl::OkStatus();
        }
        if (absl::Now() > deadline) {
          print_rollout(ro);
          return absl::DeadlineExceededError(absl::StrCat(
              "rollout ", r.id, " did not settle within ", wait_timeout, " seconds"));
        }
        absl::SleepFor(absl::Milliseconds(500));
      }
    };
  });
  CLI::App* list = rollout->add_subcommand("list", "list rollouts, newest first");
  list->add_option("--channel", r.channel, "only this channel");
  list->add_flag("--active", r.active, "only unfinished rollouts");
  list->add_option("--limit", r.limit, "at most this many")->check(CLI::Range(0, 1000));
  list->callback([&] {
    action = [&]() -> absl::Status {
      v1::ListRolloutsRequest req;
      req.set_channel(r.channel);
      req.set_active_only(r.active);
      req.set_limit(r.limit);
      ASSIGN_OR_RETURN(auto resp, client()->Call(&v1::AdminService::Stub::ListRollouts, req));
      if (as_json()) {
        json arr = json::array();
        for (const auto& ro : resp.rollouts()) {
          arr.push_back(RolloutJson(ro));
        }
        out << arr.dump() << "\n";
        return absl::OkStatus();
      }
      Table t({"ID", "CHANNEL", "VERSION", "STATE", "PREVIOUS", "CREATED", "BY"});
      for (const auto& ro : resp.rollouts()) {
        t.Add({ro.id(), ro.channel(), absl::StrCat(ro.version()), StateName(ro.state()),
               absl::StrCat(ro.previous_version()), FormatTime(ro.created_unix()),
               ro.created_by()});
      }
      t.Print(out);
      return absl::OkStatus();
    };
  });
  using StubMethod = grpc::Status (v1::AdminService::Stub::*)(
      grpc::ClientContext*, const v1::RolloutActionRequest&, v1::Rollout*);
  auto add_action = [&](const char* name, const char* help, StubMethod method) {
    CLI::App* cmd = rollout->add_subcommand(name, help);
    cmd->add_option("id", r.id, "rollout id")->required();
    cmd->add_option("--reason", r.reason, "why (audited; required except for promote)");
    cmd->add_option("--expected-revision", r.expected_revision,
                    "refuse unless the rollout is at this revision");
    if (method == &v1::AdminService::Stub::PromoteRollout) {
      cmd->add_flag("--force", r.force,
                    "promote although the stage gate has not passed (needs --reason)");
    }
    cmd->callback([&, method] {
      action = [&, method]() -> absl::Status {
        v1::RolloutActionRequest req;
        req.set_id(r.id);
        req.set_reason(r.reason);
        req.set_expected_revision(r.expected_revision);
        req.set_force(r.force);
        ASSIGN_OR_RETURN(auto resp, client()->Call(method, req));
        print_rollout(resp);
        return absl::OkStatus();
      };
    });
  };
  add_action("promote",
             "move a rollout to its next ring\n  example: ringctl rollout promote ro-1a2b3c4d",
             &v1::AdminService::Stub::PromoteRollout);
  add_action("halt",
             "freeze a rollout: nobody new gets the version\n  example: ringctl rollout halt "
             "ro-1a2b3c4d --reason \"crash reports in canary\"",
             &v1::AdminService::Stub::HaltRollout);
  add_action("resume",
             "continue a halted rollout\n  example: ringctl rollout resume ro-1a2b3c4d "
             "--reason \"false alarm, see INC-7\"",
             &v1::AdminService::Stub::ResumeRollout);
  add_action("rollback",
             "send every agent back to the previous completed version and revoke this one\n"
             "  example: ringctl rollout rollback ro-1a2b3c4d --reason \"boot loops\"",
             &v1::AdminService::Stub::RollbackRollout);

  CLI::App* explain = rollout->add_subcommand(
      "explain", "why the rollout is where it is: the latest decision per ring with its "
                 "evidence\n  example: ringctl rollout explain ro-1a2b3c4d");
  explain->add_option("id", r.id, "rollout id")->required();
  explain->callback([&] {
    action = [&]() -> absl::Status {
      v1::GetRolloutRequest req;
      req.set_id(r.id);
      ASSIGN_OR_RETURN(auto resp, client()->Call(&v1::AdminService::Stub::ExplainRollout, req));
      if (as_json()) {
        json decisions = json::array();
        for (const auto& d : resp.decisions()) {
          decisions.push_back({{"ring", d.ring()},
                               {"kind", d.kind()},
                               {"reason", d.reason()},
                               {"gate_passed", d.gate_passed()},
                               {"summary", d.summary()},
                               {"evaluated_unix_ms", d.evaluated_unix_ms()},
                               {"evidence", json::parse(d.evidence_json(), nullptr, false)}});
        }
        json actions = json::array();
        for (const auto& a : resp.automatic_actions()) {
          actions.push_back({{"at_unix_ms", a.at_unix_ms()},
                             {"action", a.action()},
                             {"from_state", a.from_state()},
                             {"to_state", a.to_state()},
                             {"reason", a.reason()},
                             {"evidence", json::parse(a.evidence_json(), nullptr, false)}});
        }
        out << json{{"rollout", RolloutJson(resp.rollout())},
                    {"decisions", decisions},
                    {"automatic_actions", actions}}
                   .dump()
            << "\n";
        return absl::OkStatus();
      }
      PrintRollout(resp.rollout(), out);
      if (resp.decisions().empty()) {
        out << "\nno automatic decision yet\n";
      }
      for (const auto& d : resp.decisions()) {
        out << "\n" << d.summary() << "\n";
        out << "  decision " << d.kind() << " (" << d.reason() << "), evaluated "
            << FormatTime(d.evaluated_unix_ms() / 1000) << "\n";
        json e = json::parse(d.evidence_json(), nullptr, false);
        if (e.is_object() && e.contains("treated") && e.contains("control")) {
          const json& t = e["treated"];
          const json& c = e["control"];
          out << "  treated: " << t.value("attempted", 0) << " tried, "
              << t.value("healthy", 0) << " healthy, " << t.value("pending", 0)
              << " pending, " << t.value("crashed", 0) << " crashed, " << t.value("silent", 0)
              << " silent, " << t.value("reverted", 0) << " reverted, "
              << t.value("apply_failed", 0) << " failed to apply\n";
          out << "  control: " << c.value("failed", 0) << " of " << c.value("agents", 0)
              << " failed\n";
        }
        if (e.is_object() && e.contains("test")) {
          const json& t = e["test"];
          out << "  test: " << t.value("name", "") << ", halt at LLR >= "
              << t.value("halt_bound", 0.0) << ", healthy at LLR <= "
              << t.value("accept_bound", 0.0) << "; vs control LLR "
              << t["vs_control"].value("llr", 0.0) << ", vs baseline LLR "
              << t["vs_baseline"].value("llr", 0.0) << "\n";
        }
        if (e.is_object() && e.contains("waiting_for") && !e["waiting_for"].empty()) {
          std::vector<std::string> w = e["waiting_for"].get<std::vector<std::string>>();
          out << "  waiting for: " << absl::StrJoin(w, "; ") << "\n";
        }
      }
      if (!resp.automatic_actions().empty()) {
        out << "\nautomatic actions:\n";
        for (const auto& a : resp.automatic_actions()) {
          out << "  " << FormatTime(a.at_unix_ms() / 1000) << "  " << a.action() << "  "
              << a.from_state() << " -> " << a.to_state() << "\n";
        }
      }
      return absl::OkStatus();
    };
  });

  // policy
  CLI::App* policy = app.add_subcommand("policy", "rollout policies (stage gates)")
                         ->require_subcommand(1);
  struct {
    std::string name = "default", file, reason;
    int64_t version = 0;
  } po;
  auto print_policy = [&](const v1::Policy& p) {
    json body = json::parse(p.policy_json(), nullptr, false);
    if (as_json()) {
      out << json{{"name", p.name()},
                  {"version", p.version()},
                  {"created_by", p.created_by()},
                  {"created_unix", p.created_unix()},
                  {"policy", body}}
                 .dump()
          << "\n";
      return;
    }
    out << "policy " << p.name() << " v" << p.version() << " (set by " << p.created_by() << " "
        << FormatTime(p.created_unix()) << ")\n"
        << body.dump(2) << "\n";
  };
  CLI::App* policy_set = policy->add_subcommand(
      "set", "store a new version of a policy from a JSON file\n  example: ringctl policy set "
             "default --file policy.json --reason \"faster canary\"");
  policy_set->add_option("name", po.name, "policy name")->required();
  policy_set->add_option("--file", po.file, "policy JSON (keys left out keep defaults)")
      ->required();
  policy_set->add_option("--reason", po.reason, "why (audited)");
  policy_set->callback([&] {
    action = [&]() -> absl::Status {
      ASSIGN_OR_RETURN(std::string body, ReadFile(po.file, 64 * 1024));
      v1::SetPolicyRequest req;
      req.set_name(po.name);
      req.set_policy_json(body);
      req.set_reason(po.reason);
      ASSIGN_OR_RETURN(auto resp, client()->Call(&v1::AdminService::Stub::SetPolicy, req));
      print_policy(resp);
      return absl::OkStatus();
    };
  });
  CLI::App* policy_show = policy->add_subcommand(
      "show", "show a policy (newest version unless --version)\n  example: ringctl policy "
              "show default");
  policy_show->add_option("name", po.name, "policy name")->capture_default_str();
  policy_show->add_option("--version", po.version, "version (default: newest)");
  policy_show->callback([&] {
    action = [&]() -> absl::Status {
      v1::GetPolicyRequest req;
      req.set_name(po.name);
      req.set_version(po.version);
      ASSIGN_OR_RETURN(auto resp, client()->Call(&v1::AdminService::Stub::GetPolicy, req));
      print_policy(resp);
      return absl::OkStatus();
    };
  });

  // emergency-stop
  struct {
    bool lift = false;
    std::string reason;
  } e;
  CLI::App* estop = app.add_subcommand(
      "emergency-stop", "freeze every rollout of every channel; agents apply nothing new\n"
                        "  example: ringctl emergency-stop --reason \"INC-9 investigating\"");
  estop->add_flag("--lift", e.lift, "lift the emergency stop");
  estop->add_option("--reason", e.reason, "why (required, audited)")->required();
  estop->callback([&] {
    action = [&]() -> absl::Status {
      v1::EmergencyStopRequest req;
      req.set_lift(e.lift);
      req.set_reason(e.reason);
      ASSIGN_OR_RETURN(auto resp, client()->Call(&v1::AdminService::Stub::EmergencyStop, req));
      if (as_json()) {
        out << json{{"emergency_stop", resp.active()}}.dump() << "\n";
      } else {
        out << (resp.active() ? "emergency stop ACTIVE: agents apply nothing new\n"
                              : "emergency stop lifted\n");
      }
      return absl::OkStatus();
    };
  });

  // pin
  CLI::App* pin = app.add_subcommand("pin", "version policy per agent group")
                      ->require_subcommand(1);
  struct {
    std::string label, channel, policy, reason;
  } p;
  CLI::App* pin_set = pin->add_subcommand(
      "set", "pin agents with a label to latest, n-1 or a version\n  example: ringctl pin set "
             "--label group=payments --channel rules.behavioral n-1");
  pin_set->add_option("--label", p.label, "label key=value")->required();
  pin_set->add_option("--channel", p.channel, "channel")->required();
  pin_set->add_option("policy", p.policy, "latest, n-1 or a version number")->required();
  pin_set->add_option("--reason", p.reason, "why (audited)");
  pin_set->callback([&] {
    action = [&]() -> absl::Status {
      std::pair<std::string, std::string> kv = absl::StrSplit(p.label, absl::MaxSplits('=', 1));
      if (p.label.find('=') == std::string::npos || kv.first.empty()) {
        return absl::InvalidArgumentError("--label must be key=value");
      }
      v1::SetPinRequest req;
      req.set_label_key(kv.first);
      req.set_label_value(kv.second);
      req.set_channel(p.channel);
      req.set_policy(p.policy);
      req.set_reason(p.reason);
      ASSIGN_OR_RETURN(auto resp, client()->Call(&v1::AdminService::Stub::SetPin, req));
      if (as_json()) {
        out << json{{"label", p.label}, {"channel", resp.channel()}, {"policy", resp.policy()}}
                   .dump()
            << "\n";
      } else {
        out << "pinned " << p.label << " on " << resp.channel() << " to " << resp.policy()
            << "\n";
      }
      return absl::OkStatus();
    };
  });
  CLI::App* pin_list = pin->add_subcommand("list", "list pins");
  pin_list->callback([&] {
    action = [&]() -> absl::Status {
      ASSIGN_OR_RETURN(auto resp,
                       client()->Call(&v1::AdminService::Stub::ListPins, v1::ListPinsRequest()));
      if (as_json()) {
        json arr = json::array();
        for (const auto& pn : resp.pins()) {
          arr.push_back({{"label", absl::StrCat(pn.label_key(), "=", pn.label_value())},
                         {"channel", pn.channel()},
                         {"policy", pn.policy()}});
        }
        out << arr.dump() << "\n";
        return absl::OkStatus();
      }
      Table t({"LABEL", "CHANNEL", "POLICY"});
      for (const auto& pn : resp.pins()) {
        t.Add({absl::StrCat(pn.label_key(), "=", pn.label_value()), pn.channel(), pn.policy()});
      }
      t.Print(out);
      return absl::OkStatus();
    };
  });

  // agents
  CLI::App* agents = app.add_subcommand("agents", "inspect enrolled agents")
                         ->require_subcommand(1);
  struct {
    std::string ring;
    int limit = 0;
  } a;
  CLI::App* agents_list = agents->add_subcommand("list", "list agents and their versions");
  agents_list->add_option("--ring", a.ring, "canary, early or broad");
  agents_list->add_option("--limit", a.limit, "at most this many (default 1000)")
      ->check(CLI::Range(0, 1000));
  agents_list->callback([&] {
    action = [&]() -> absl::Status {
      v1::ListAgentsRequest req;
      req.set_ring(a.ring);
      req.set_limit(a.limit);
      ASSIGN_OR_RETURN(auto resp, client()->Call(&v1::AdminService::Stub::ListAgents, req));
      if (as_json()) {
        json arr = json::array();
        for (const auto& ag : resp.agents()) {
          json versions = json::object();
          for (const auto& v : ag.versions()) {
            versions[v.channel()] = v.version();
          }
          arr.push_back({{"agent_id", ag.agent_id()},
                         {"ring", ag.ring()},
                         {"labels", std::map<std::string, std::string>(ag.labels().begin(),
                                                                       ag.labels().end())},
                         {"versions", versions},
                         {"last_seen_unix", ag.last_seen_unix()}});
        }
        out << json{{"total", resp.total()}, {"agents", arr}}.dump() << "\n";
        return absl::OkStatus();
      }
      Table t({"AGENT", "RING", "VERSIONS", "LAST SEEN", "LABELS"});
      for (const auto& ag : resp.agents()) {
        std::vector<std::string> versions, labels;
        for (const auto& v : ag.versions()) {
          versions.push_back(absl::StrCat(v.channel(), "=v", v.version()));
        }
        std::map<std::string, std::string> sorted(ag.labels().begin(), ag.labels().end());
        for (const auto& [k, v] : sorted) {
          labels.push_back(absl::StrCat(k, "=", v));
        }
        t.Add({ag.agent_id(), ag.ring(), versions.empty() ? "-" : absl::StrJoin(versions, ","),
               FormatTime(ag.last_seen_unix()), absl::StrJoin(labels, ",")});
      }
      t.Print(out);
      out << resp.agents_size() << " of " << resp.total() << " agents\n";
      return absl::OkStatus();
    };
  });

  // audit
  struct {
    std::string rollout;
    int limit = 0;
  } au;
  CLI::App* audit = app.add_subcommand(
      "audit", "show the audit log, newest first\n  example: ringctl audit --rollout ro-1a2b3c4d");
  audit->add_option("--rollout", au.rollout, "only this rollout");
  audit->add_option("--limit", au.limit, "at most this many (default 100)")
      ->check(CLI::Range(0, 1000));
  audit->callback([&] {
    action = [&]() -> absl::Status {
      v1::ListAuditLogRequest req;
      req.set_rollout_id(au.rollout);
      req.set_limit(au.limit);
      ASSIGN_OR_RETURN(auto resp, client()->Call(&v1::AdminService::Stub::ListAuditLog, req));
      if (as_json()) {
        json arr = json::array();
        for (const auto& en : resp.entries()) {
          arr.push_back({{"id", en.id()},
                         {"at_unix_ms", en.at_unix_ms()},
                         {"actor", en.actor()},
                         {"action", en.action()},
                         {"rollout_id", en.rollout_id()},
                         {"from_state", en.from_state()},
                         {"to_state", en.to_state()},
                         {"reason", en.reason()},
                         {"evidence", json::parse(en.evidence_json(), nullptr, false)}});
        }
        out << arr.dump() << "\n";
        return absl::OkStatus();
      }
      Table t({"TIME", "ACTOR", "ACTION", "ROLLOUT", "CHANGE", "REASON"});
      for (const auto& en : resp.entries()) {
        std::string change = en.from_state().empty() && en.to_state().empty()
                                 ? "-"
                                 : absl::StrCat(en.from_state().empty() ? "new" : en.from_state(),
                                                " -> ", en.to_state());
        t.Add({FormatTime(en.at_unix_ms() / 1000), en.actor(), en.action(),
               en.rollout_id().empty() ? "-" : en.rollout_id(), change, en.reason()});
      }
      t.Print(out);
      return absl::OkStatus();
    };
  });

  std::vector<std::string> reversed(args.rbegin(), args.rend());
  if (!reversed.empty()) {
    reversed.pop_back();  // program name
  }
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp& e) {
    app.exit(e, out, err);
    return kExitOk;
  } catch (const CLI::CallForAllHelp& e) {
    app.exit(e, out, err);
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    app.exit(e, out, err);
    return kExitUsage;
  }
  if (!action) {
    err << "ringctl: nothing to do; see ringctl --help\n";
    return kExitUsage;
  }
  absl::Status st = action();
  if (!st.ok()) {
    err << "ringctl: " << absl::StatusCodeToString(st.code()) << ": " << st.message() << "\n";
    return ExitCodeFor(st);
  }
  return kExitOk;
}

}  // namespace ringwarden

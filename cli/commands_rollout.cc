// rollout start, status (--watch), wait, list, history, explain, promote, halt,
// resume and rollback.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/commands.h"
#include "cli/ringctl.h"
#include "cli/watch.h"
#include "common/clock.h"
#include "common/status_macros.h"

namespace ringwarden {
namespace {

// ListAuditLog answers at most this many entries.
constexpr int kMaxAuditEntries = 1000;

struct RolloutFlags {
  std::string channel, id, reason, policy, until_state;
  int64_t version = 0;
  int64_t expected_revision = 0;
  bool hold = false, supersede = false, active = false, force = false, watch = false;
  int limit = 0;
  double interval_seconds = 2;
  double wait_seconds = 300;
};

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

std::string EndedAs(const v1::Rollout& r) {
  std::string state = StateName(r.state());
  if (r.state() == v1::HALTED) {
    absl::StrAppend(&state, " (in ", StateName(r.halted_from()), ")");
  }
  return state;
}

absl::Status Watch(CommandContext& ctx, const RolloutFlags& f) {
  v1::GetRolloutRequest req;
  req.set_id(f.id);
  // ExplainRollout carries the rollout with its ring progress and the decisions,
  // so one call gives a consistent frame.
  ExplainFetcher fetch = [&ctx, &req] {
    return ctx.client().Call(&v1::AdminService::Stub::ExplainRollout, req);
  };
  WatchOptions options;
  options.interval = absl::Milliseconds(f.interval_seconds * 1000);
  options.format = ctx.format();
  options.ansi = ctx.out_is_tty && ctx.format() == OutputFormat::kTable;
  ScopedInterruptSleeper sleeper;
  ASSIGN_OR_RETURN(WatchResult result,
                   WatchRollout(
                       fetch, [&sleeper](absl::Duration d) { return sleeper.Sleep(d); },
                       RealClock::Instance(), options, ctx.out));
  switch (result.end) {
    case WatchEnd::kCompleted:
      return absl::OkStatus();
    case WatchEnd::kStopped:
      return absl::FailedPreconditionError(
          absl::StrCat("rollout ", f.id, " ended ", EndedAs(result.rollout)));
    case WatchEnd::kInterrupted:
      if (options.ansi) {
        ctx.out << "\n";  // keep the shell prompt off the terminal's "^C"
      }
      ctx.err << "ringctl: interrupted\n";
      ctx.exit_code = kExitInterrupted;
      return absl::OkStatus();
  }
  return absl::InternalError("unknown watch result");
}

absl::Status Wait(CommandContext& ctx, const RolloutFlags& f) {
  const absl::Time deadline = absl::Now() + absl::Milliseconds(f.wait_seconds * 1000);
  v1::GetRolloutRequest req;
  req.set_id(f.id);
  std::string last_seen;
  while (true) {
    ASSIGN_OR_RETURN(auto ro, ctx.client().Call(&v1::AdminService::Stub::GetRollout, req));
    const std::string state = StateName(ro.state());
    if (!f.until_state.empty()) {
      const std::string position = absl::StrCat(state, "/", ro.broad_wave());
      if (position != last_seen && ctx.format() == OutputFormat::kTable) {
        ctx.out << "\n" << FormatTime(absl::ToUnixSeconds(absl::Now())) << "\n";
        RenderRollout(ro, ctx.format(), ctx.out);
        ctx.out << std::flush;
        last_seen = position;
      }
      if (state == f.until_state || IsFinalState(ro.state())) {
        if (ctx.format() == OutputFormat::kJson) {
          RenderRollout(ro, ctx.format(), ctx.out);
        }
        if (state != f.until_state) {
          return absl::FailedPreconditionError(
              absl::StrCat("rollout ", f.id, " ended ", state, ", not ", f.until_state));
        }
        return absl::OkStatus();
      }
    } else if (RolloutSettled(ro)) {
      RenderRollout(ro, ctx.format(), ctx.out);
      return absl::OkStatus();
    }
    if (absl::Now() > deadline) {
      RenderRollout(ro, ctx.format(), ctx.out);
      return absl::DeadlineExceededError(
          absl::StrCat("rollout ", f.id, " did not settle within ", f.wait_seconds, " seconds"));
    }
    absl::SleepFor(absl::Milliseconds(500));
  }
}

absl::Status History(CommandContext& ctx, const RolloutFlags& f) {
  v1::ListAuditLogRequest req;
  req.set_rollout_id(f.id);
  req.set_limit(kMaxAuditEntries);
  ASSIGN_OR_RETURN(auto resp, ctx.client().Call(&v1::AdminService::Stub::ListAuditLog, req));
  if (resp.entries().empty()) {
    // Every rollout has at least its start entry: tell a wrong id from an empty log.
    v1::GetRolloutRequest get;
    get.set_id(f.id);
    RETURN_IF_ERROR(ctx.client().Call(&v1::AdminService::Stub::GetRollout, get).status());
  }
  if (resp.entries_size() >= kMaxAuditEntries) {
    ctx.err << "ringctl: showing the newest " << kMaxAuditEntries << " entries only\n";
  }
  std::vector<v1::AuditEntry> entries(resp.entries().rbegin(), resp.entries().rend());
  // The server answers newest first; order by time (then id) in case of equal stamps.
  std::stable_sort(
      entries.begin(), entries.end(), [](const v1::AuditEntry& a, const v1::AuditEntry& b) {
        return a.at_unix_ms() != b.at_unix_ms() ? a.at_unix_ms() < b.at_unix_ms() : a.id() < b.id();
      });
  RenderHistory(entries, ctx.format(), ctx.out);
  return absl::OkStatus();
}

}  // namespace

void AddRolloutCommands(CLI::App& app, CommandContext& ctx) {
  auto r = std::make_shared<RolloutFlags>();
  CLI::App* rollout =
      app.add_subcommand("rollout", "start, watch and drive rollouts")->require_subcommand(1);

  CLI::App* start =
      AddVerb(rollout, "start", "start a rollout of an uploaded version (enters CANARY)",
              {"ringctl rollout start --channel rules.behavioral --version 42",
               "ringctl rollout start --channel rules.behavioral --version 43 --supersede "
               "--policy strict --reason \"hotfix\""});
  start->add_option("--channel", r->channel, "channel")->required();
  start->add_option("--version", r->version, "version")->required();
  start->add_flag("--hold", r->hold, "stay PENDING until promoted");
  start->add_flag("--supersede", r->supersede, "cancel the channel's unfinished rollout");
  start->add_option("--reason", r->reason, "why (audited)");
  start->add_option("--policy", r->policy, "rollout policy name (default: default)");
  start->callback([&ctx, r] {
    ctx.action = [&ctx, r]() -> absl::Status {
      v1::StartRolloutRequest req;
      req.set_channel(r->channel);
      req.set_version(r->version);
      req.set_hold(r->hold);
      req.set_supersede(r->supersede);
      req.set_reason(r->reason);
      req.set_policy(r->policy);
      ASSIGN_OR_RETURN(auto resp, ctx.client().Call(&v1::AdminService::Stub::StartRollout, req));
      RenderRollout(resp, ctx.format(), ctx.out);
      return absl::OkStatus();
    };
  });

  CLI::App* status =
      AddVerb(rollout, "status",
              "show a rollout and per-ring progress; --watch follows it live and exits 0 once it "
              "COMPLETED, 2 if it ends HALTED, ROLLED_BACK or CANCELLED",
              {"ringctl rollout status ro-1a2b3c4d", "ringctl rollout status ro-1a2b3c4d --watch",
               "ringctl rollout status ro-1a2b3c4d --watch --interval 10 -o json   # one line per "
               "refresh"});
  status->add_option("id", r->id, "rollout id")->required();
  CLI::Option* watch = status->add_flag(
      "-w,--watch", r->watch,
      "redraw until the rollout is COMPLETED, HALTED, ROLLED_BACK or CANCELLED (or Ctrl-C)");
  status->add_option("--interval", r->interval_seconds, "seconds between refreshes with --watch")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str()
      ->needs(watch);
  status->callback([&ctx, r] {
    ctx.action = [&ctx, r]() -> absl::Status {
      if (r->watch) {
        return Watch(ctx, *r);
      }
      v1::GetRolloutRequest req;
      req.set_id(r->id);
      ASSIGN_OR_RETURN(auto resp, ctx.client().Call(&v1::AdminService::Stub::GetRollout, req));
      RenderRollout(resp, ctx.format(), ctx.out);
      return absl::OkStatus();
    };
  });

  CLI::App* wait =
      AddVerb(rollout, "wait",
              "wait until every ring the rollout reached runs its version (or it ends); with "
              "--until, until it reaches that state, printing each state change",
              {"ringctl rollout wait ro-1a2b3c4d",
               "ringctl rollout wait ro-1a2b3c4d --until COMPLETED "
               "--for 600"});
  wait->add_option("id", r->id, "rollout id")->required();
  wait->add_option("--for", r->wait_seconds, "seconds to wait at most")->capture_default_str();
  wait->add_option("--until", r->until_state, "state to wait for, e.g. COMPLETED or HALTED")
      ->check(CLI::IsMember({"PENDING", "CANARY", "EARLY", "BROAD", "COMPLETED", "HALTED",
                             "ROLLED_BACK", "CANCELLED"}));
  wait->callback([&ctx, r] { ctx.action = [&ctx, r] { return Wait(ctx, *r); }; });

  CLI::App* list = AddVerb(rollout, "list", "list rollouts, newest first",
                           {"ringctl rollout list",
                            "ringctl rollout list --channel "
                            "rules.behavioral --active -o json"});
  list->add_option("--channel", r->channel, "only this channel");
  list->add_flag("--active", r->active, "only unfinished rollouts");
  list->add_option("--limit", r->limit, "at most this many (default 100)")
      ->check(CLI::Range(0, 1000));
  list->callback([&ctx, r] {
    ctx.action = [&ctx, r]() -> absl::Status {
      v1::ListRolloutsRequest req;
      req.set_channel(r->channel);
      req.set_active_only(r->active);
      req.set_limit(r->limit);
      ASSIGN_OR_RETURN(auto resp, ctx.client().Call(&v1::AdminService::Stub::ListRollouts, req));
      RenderRolloutList(resp, ctx.format(), ctx.out);
      return absl::OkStatus();
    };
  });

  CLI::App* history = AddVerb(
      rollout, "history", "the rollout's audit entries as a timeline, oldest first",
      {"ringctl rollout history ro-1a2b3c4d", "ringctl rollout history ro-1a2b3c4d -o json"});
  history->add_option("id", r->id, "rollout id")->required();
  history->callback([&ctx, r] { ctx.action = [&ctx, r] { return History(ctx, *r); }; });

  CLI::App* explain =
      AddVerb(rollout, "explain",
              "why the rollout is where it is: the latest decision per ring with its evidence",
              {"ringctl rollout explain ro-1a2b3c4d"});
  explain->add_option("id", r->id, "rollout id")->required();
  explain->callback([&ctx, r] {
    ctx.action = [&ctx, r]() -> absl::Status {
      v1::GetRolloutRequest req;
      req.set_id(r->id);
      ASSIGN_OR_RETURN(auto resp, ctx.client().Call(&v1::AdminService::Stub::ExplainRollout, req));
      RenderExplain(resp, ctx.format(), ctx.out);
      return absl::OkStatus();
    };
  });

  using StubMethod = grpc::Status (v1::AdminService::Stub::*)(
      grpc::ClientContext*, const v1::RolloutActionRequest&, v1::Rollout*);
  auto add_action = [&ctx, r, rollout](const char* name, const std::string& help,
                                       const std::vector<std::string>& examples,
                                       StubMethod method) {
    CLI::App* cmd = AddVerb(rollout, name, help, examples);
    cmd->add_option("id", r->id, "rollout id")->required();
    cmd->add_option("--reason", r->reason, "why (audited; required except for promote)");
    cmd->add_option("--expected-revision", r->expected_revision,
                    "refuse unless the rollout is at this revision");
    if (method == &v1::AdminService::Stub::PromoteRollout) {
      cmd->add_flag("--force", r->force,
                    "promote although the stage gate has not passed (needs --reason)");
    }
    cmd->callback([&ctx, r, method] {
      ctx.action = [&ctx, r, method]() -> absl::Status {
        v1::RolloutActionRequest req;
        req.set_id(r->id);
        req.set_reason(r->reason);
        req.set_expected_revision(r->expected_revision);
        req.set_force(r->force);
        ASSIGN_OR_RETURN(auto resp, ctx.client().Call(method, req));
        RenderRollout(resp, ctx.format(), ctx.out);
        return absl::OkStatus();
      };
    });
  };
  add_action("promote", "move a rollout to its next ring (or broad wave)",
             {"ringctl rollout promote ro-1a2b3c4d",
              "ringctl rollout promote ro-1a2b3c4d --force --reason \"hotfix, INC-12\""},
             &v1::AdminService::Stub::PromoteRollout);
  add_action("halt", "freeze a rollout: nobody new gets the version",
             {"ringctl rollout halt ro-1a2b3c4d --reason \"crash reports in canary\""},
             &v1::AdminService::Stub::HaltRollout);
  add_action("resume", "continue a halted rollout in the stage where it stopped",
             {"ringctl rollout resume ro-1a2b3c4d --reason \"false alarm, see INC-7\""},
             &v1::AdminService::Stub::ResumeRollout);
  add_action("rollback",
             "send every agent back to the previous completed version and revoke this one",
             {"ringctl rollout rollback ro-1a2b3c4d --reason \"boot loops\""},
             &v1::AdminService::Stub::RollbackRollout);
}

}  // namespace ringwarden

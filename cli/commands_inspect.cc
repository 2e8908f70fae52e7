// agents list and audit.
#include <memory>
#include <string>

#include "cli/commands.h"
#include "common/status_macros.h"

namespace ringwarden {
namespace {

struct InspectFlags {
  std::string ring, rollout;
  int limit = 0;
};

}  // namespace

void AddInspectCommands(CLI::App& app, CommandContext& ctx) {
  auto a = std::make_shared<InspectFlags>();
  CLI::App* agents = app.add_subcommand("agents", "inspect enrolled agents")->require_subcommand(1);
  CLI::App* agents_list = AddVerb(agents, "list", "list agents, their ring and versions",
                                  {"ringctl agents list --ring canary",
                                   "ringctl agents list --limit 1 -o json   "
                                   "# \"total\" counts every agent"});
  agents_list->add_option("--ring", a->ring, "canary, early or broad")
      ->check(CLI::IsMember({"canary", "early", "broad"}));
  agents_list->add_option("--limit", a->limit, "at most this many (default 1000)")
      ->check(CLI::Range(0, 1000));
  agents_list->callback([&ctx, a] {
    ctx.action = [&ctx, a]() -> absl::Status {
      v1::ListAgentsRequest req;
      req.set_ring(a->ring);
      req.set_limit(a->limit);
      ASSIGN_OR_RETURN(auto resp, ctx.client().Call(&v1::AdminService::Stub::ListAgents, req));
      RenderAgents(resp, ctx.format(), ctx.out);
      return absl::OkStatus();
    };
  });

  CLI::App* audit = AddVerb(&app, "audit", "show the audit log, newest first",
                            {"ringctl audit --rollout ro-1a2b3c4d",
                             "ringctl audit --limit 20 "
                             "-o json"});
  audit->add_option("--rollout", a->rollout, "only this rollout");
  audit->add_option("--limit", a->limit, "at most this many (default 100)")
      ->check(CLI::Range(0, 1000));
  audit->callback([&ctx, a] {
    ctx.action = [&ctx, a]() -> absl::Status {
      v1::ListAuditLogRequest req;
      req.set_rollout_id(a->rollout);
      req.set_limit(a->limit);
      ASSIGN_OR_RETURN(auto resp, ctx.client().Call(&v1::AdminService::Stub::ListAuditLog, req));
      RenderAudit(resp, ctx.format(), ctx.out);
      return absl::OkStatus();
    };
  });
}

}  // namespace ringwarden

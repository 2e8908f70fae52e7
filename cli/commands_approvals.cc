// approvals list/approve/reject and rollout approve: the two-person rule's
// requests for a second person's approval.
#include <memory>
#include <string>

#include "cli/commands.h"
#include "common/status_macros.h"

namespace ringwarden {
namespace {

struct ApprovalFlags {
  std::string id, reason;
  bool all = false;
  int limit = 0;
};

// AddDecision adds a verb that approves or rejects request `id`.
void AddDecision(CLI::App* parent, CommandContext& ctx, const std::shared_ptr<ApprovalFlags>& f,
                 const std::string& name, const std::string& help,
                 const std::vector<std::string>& examples, bool approve) {
  CLI::App* cmd = AddVerb(parent, name, help, examples);
  cmd->add_option("id", f->id, "approval request id (ap-...)")->required();
  cmd->add_option("--reason", f->reason, "why (audited)");
  cmd->callback([&ctx, f, approve] {
    ctx.action = [&ctx, f, approve]() -> absl::Status {
      v1::DecideApprovalRequest req;
      req.set_id(f->id);
      req.set_reason(f->reason);
      ASSIGN_OR_RETURN(auto resp,
                       ctx.client().Call(approve ? &v1::AdminService::Stub::ApproveRequest
                                                 : &v1::AdminService::Stub::RejectRequest,
                                         req));
      RenderApproval(resp, ctx.format(), ctx.out);
      return absl::OkStatus();
    };
  });
}

}  // namespace

void AddApprovalCommands(CLI::App& app, CommandContext& ctx) {
  auto f = std::make_shared<ApprovalFlags>();
  CLI::App* approvals =
      app.add_subcommand("approvals", "requests waiting for a second person (two-person rule)")
          ->require_subcommand(1);
  CLI::App* list = AddVerb(approvals, "list", "list pending approval requests, newest first",
                           {"ringctl approvals list", "ringctl approvals list --all -o json"});
  list->add_flag("--all", f->all, "also list approved, rejected and expired requests");
  list->add_option("--limit", f->limit, "at most this many (default 100)");
  list->callback([&ctx, f] {
    ctx.action = [&ctx, f]() -> absl::Status {
      v1::ListApprovalsRequest req;
      req.set_include_decided(f->all);
      req.set_limit(f->limit);
      ASSIGN_OR_RETURN(auto resp, ctx.client().Call(&v1::AdminService::Stub::ListApprovals, req));
      RenderApprovals(resp, ctx.format(), ctx.out);
      return absl::OkStatus();
    };
  });
  AddDecision(approvals, ctx, f, "approve",
              "execute a request someone else asked for (you become its second person)",
              {"ringctl approvals approve ap-1a2b3c4d --reason \"checked the canary numbers\""},
              /*approve=*/true);
  AddDecision(approvals, ctx, f, "reject", "refuse a pending request (or withdraw your own)",
              {"ringctl approvals reject ap-1a2b3c4d --reason \"wait for the early ring\""},
              /*approve=*/false);
  if (CLI::App* rollout = app.get_subcommand("rollout"); rollout != nullptr) {
    AddDecision(rollout, ctx, f, "approve",
                "approve a held promotion (broad, --force) asked for by someone else",
                {"ringctl rollout approve ap-1a2b3c4d --reason \"numbers look right\""},
                /*approve=*/true);
  }
}

}  // namespace ringwarden

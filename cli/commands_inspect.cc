// agents list, audit and audit verify.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/audit_verify.h"
#include "cli/commands.h"
#include "cli/ringctl.h"
#include "common/status_macros.h"

namespace ringwarden {
namespace {

struct InspectFlags {
  std::string ring, rollout;
  int limit = 0;
  std::vector<std::string> expect;
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
  audit->callback([&ctx, a, audit] {
    if (!audit->get_subcommands().empty()) {
      return;  // `audit verify` set the action
    }
    ctx.action = [&ctx, a]() -> absl::Status {
      v1::ListAuditLogRequest req;
      req.set_rollout_id(a->rollout);
      req.set_limit(a->limit);
      ASSIGN_OR_RETURN(auto resp, ctx.client().Call(&v1::AdminService::Stub::ListAuditLog, req));
      RenderAudit(resp, ctx.format(), ctx.out);
      return absl::OkStatus();
    };
  });

  CLI::App* verify =
      AddVerb(audit, "verify",
              "check the audit log's hash chain from its first entry to its head; prints the head "
              "(SEQ:HASH) to record",
              {"ringctl audit verify",
               "ringctl audit verify --expect 1234:9f86d081884c7d659a2feaa0c55ad015"
               "a3bf4f1b2b0b822cd15d6c15b0f00a08   # a head recorded earlier"});
  verify
      ->add_option("--expect", a->expect,
                   "SEQ:HASH of a head recorded earlier that must still be in the chain "
                   "unchanged (repeatable)")
      ->type_name("SEQ:HASH");
  verify->callback([&ctx, a] {
    ctx.action = [&ctx, a]() -> absl::Status {
      std::vector<AuditChainHead> expected;
      for (const std::string& text : a->expect) {
        absl::StatusOr<AuditChainHead> head = ParseAuditChainHead(text);
        if (!head.ok()) {
          return UsageError(
              absl::InvalidArgumentError(absl::StrCat("--expect: ", head.status().message())));
        }
        expected.push_back(*std::move(head));
      }
      auto fetch = [&ctx](int64_t after_seq) {
        v1::ListAuditLogRequest req;
        req.set_oldest_first(true);
        req.set_after_seq(after_seq);
        req.set_limit(kAuditVerifyPageSize);
        return ctx.client().Call(&v1::AdminService::Stub::ListAuditLog, req);
      };
      absl::StatusOr<AuditChainHead> head = VerifyAuditLog(fetch, std::move(expected));
      if (head.status().code() == absl::StatusCode::kDataLoss) {
        return absl::DataLossError(absl::StrCat("audit chain broken at ", head.status().message()));
      }
      RETURN_IF_ERROR(head.status());
      RenderAuditVerified(*head, ctx.format(), ctx.out);
      return absl::OkStatus();
    };
  });
}

}  // namespace ringwarden

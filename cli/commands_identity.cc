// enroll-token create|list|revoke and agents label|revoke|reset: who may enroll,
// and what an admin decides about an enrolled agent.
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "cli/ringctl.h"
#include "common/status_macros.h"

namespace ringwarden {
namespace {

using json = nlohmann::json;

struct IdentityFlags {
  std::string ttl = "24h";
  int max_uses = 0;
  std::vector<std::string> labels;
  std::string description, reason, id;
  bool clear = false;
};

absl::StatusOr<std::map<std::string, std::string>> ParseLabelArgs(
    const std::vector<std::string>& args) {
  std::map<std::string, std::string> labels;
  for (const std::string& arg : args) {
    const size_t eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) {
      return UsageError(
          absl::InvalidArgumentError(absl::StrCat("--label \"", arg, "\": want KEY=VALUE")));
    }
    if (!labels.emplace(arg.substr(0, eq), arg.substr(eq + 1)).second) {
      return UsageError(absl::InvalidArgumentError(
          absl::StrCat("--label ", arg.substr(0, eq), " is given twice")));
    }
  }
  return labels;
}

std::string LabelText(const google::protobuf::Map<std::string, std::string>& labels) {
  std::map<std::string, std::string> sorted(labels.begin(), labels.end());
  std::vector<std::string> parts;
  for (const auto& [k, v] : sorted) {
    parts.push_back(absl::StrCat(k, "=", v));
  }
  return parts.empty() ? "-" : absl::StrJoin(parts, ",");
}

json TokenJson(const v1::EnrollmentToken& t) {
  return {{"id", t.id()},
          {"labels", std::map<std::string, std::string>(t.labels().begin(), t.labels().end())},
          {"max_uses", t.max_uses()},
          {"uses", t.uses()},
          {"created_unix", t.created_unix()},
          {"created_by", t.created_by()},
          {"expires_unix", t.expires_unix()},
          {"revoked_unix", t.revoked_unix()},
          {"description", t.description()}};
}

void RenderAgent(const v1::AgentInfo& a, CommandContext& ctx, absl::string_view verb) {
  if (ctx.format() == OutputFormat::kJson) {
    ctx.out << AgentJson(a).dump() << "\n";
    return;
  }
  ctx.out << verb << " agent " << a.agent_id() << ": ring " << a.ring() << ", labels "
          << LabelText(a.labels())
          << (a.revoked_unix() != 0 ? absl::StrCat(", revoked ", FormatTime(a.revoked_unix()))
                                    : std::string())
          << "\n";
}

}  // namespace

void AddIdentityCommands(CLI::App& app, CommandContext& ctx) {
  auto f = std::make_shared<IdentityFlags>();
  CLI::App* tokens = app.add_subcommand("enroll-token", "make, list and revoke enrollment tokens")
                         ->require_subcommand(1);
  CLI::App* create =
      AddVerb(tokens, "create",
              "make a short-lived enrollment token; its labels decide the ring of every agent that "
              "enrolls with it (admin)",
              {"ringctl enroll-token create --ttl 24h --max-uses 500",
               "ringctl enroll-token create --ttl 2h --max-uses 20 --label group=dogfood "
               "--description 'dogfood laptops'"});
  create->add_option("--ttl", f->ttl, "how long it may be used: 1m to 720h (default 24h)");
  create->add_option("--max-uses", f->max_uses, "how many agents may enroll with it")
      ->required()
      ->check(CLI::Range(1, 1'000'000));
  create->add_option("--label", f->labels, "label KEY=VALUE the agents get (repeatable)");
  create->add_option("--description", f->description, "what the token is for");
  create->callback([&ctx, f] {
    ctx.action = [&ctx, f]() -> absl::Status {
      absl::Duration ttl;
      if (!absl::ParseDuration(f->ttl, &ttl) || ttl <= absl::ZeroDuration()) {
        return UsageError(absl::InvalidArgumentError(
            absl::StrCat("--ttl \"", f->ttl, "\": want a duration such as 30m or 24h")));
      }
      v1::CreateEnrollmentTokenRequest req;
      req.set_ttl_seconds(absl::ToInt64Seconds(ttl));
      req.set_max_uses(f->max_uses);
      ASSIGN_OR_RETURN(auto labels, ParseLabelArgs(f->labels));
      req.mutable_labels()->insert(labels.begin(), labels.end());
      req.set_description(f->description);
      ASSIGN_OR_RETURN(auto resp,
                       ctx.client().Call(&v1::AdminService::Stub::CreateEnrollmentToken, req));
      if (ctx.format() == OutputFormat::kJson) {
        json doc = TokenJson(resp.token());
        doc["token"] = resp.secret_token();
        ctx.out << doc.dump() << "\n";
        return absl::OkStatus();
      }
      ctx.out << resp.secret_token() << "\n";
      ctx.err << "enrollment token " << resp.token().id() << ": " << resp.token().max_uses()
              << " uses until " << FormatTime(resp.token().expires_unix()) << " UTC, labels "
              << LabelText(resp.token().labels())
              << "; it is shown only now: give it to the hosts as --enrollment-token\n";
      return absl::OkStatus();
    };
  });

  CLI::App* list = AddVerb(tokens, "list", "list enrollment tokens (never their secrets)",
                           {"ringctl enroll-token list", "ringctl enroll-token list -o json"});
  list->callback([&ctx] {
    ctx.action = [&ctx]() -> absl::Status {
      ASSIGN_OR_RETURN(auto resp, ctx.client().Call(&v1::AdminService::Stub::ListEnrollmentTokens,
                                                    v1::ListEnrollmentTokensRequest()));
      if (ctx.format() == OutputFormat::kJson) {
        json arr = json::array();
        for (const auto& t : resp.tokens()) {
          arr.push_back(TokenJson(t));
        }
        ctx.out << arr.dump() << "\n";
        return absl::OkStatus();
      }
      Table t({"ID", "USES", "EXPIRES", "REVOKED", "LABELS", "BY", "DESCRIPTION"});
      for (const auto& token : resp.tokens()) {
        t.Add({token.id(), absl::StrCat(token.uses(), "/", token.max_uses()),
               FormatTime(token.expires_unix()), FormatTime(token.revoked_unix()),
               LabelText(token.labels()), token.created_by(), token.description()});
      }
      t.Print(ctx.out);
      return absl::OkStatus();
    };
  });

  CLI::App* revoke = AddVerb(tokens, "revoke", "stop an enrollment token from enrolling anyone",
                             {"ringctl enroll-token revoke 0123456789abcdef --reason leaked"});
  revoke->add_option("id", f->id, "token id (from enroll-token list)")->required();
  revoke->add_option("--reason", f->reason, "why; recorded in the audit log");
  revoke->callback([&ctx, f] {
    ctx.action = [&ctx, f]() -> absl::Status {
      v1::RevokeEnrollmentTokenRequest req;
      req.set_id(f->id);
      req.set_reason(f->reason);
      ASSIGN_OR_RETURN(auto resp,
                       ctx.client().Call(&v1::AdminService::Stub::RevokeEnrollmentToken, req));
      ctx.out << "revoked enrollment token " << resp.id() << " (" << resp.uses() << " of "
              << resp.max_uses() << " uses taken)\n";
      return absl::OkStatus();
    };
  });

  CLI::App* agents = app.get_subcommand("agents");
  CLI::App* label = AddVerb(
      agents, "label",
      "replace the labels that decide an agent's ring and pins (admin); what agents say about "
      "themselves never does",
      {"ringctl agents label host-17 --label group=dogfood --reason 'joins dogfood'",
       "ringctl agents label host-17 --clear --reason 'leaves dogfood'"});
  label->add_option("id", f->id, "agent id")->required();
  label->add_option("--label", f->labels, "label KEY=VALUE (repeatable)");
  label->add_flag("--clear", f->clear, "remove every label");
  label->add_option("--reason", f->reason, "why; recorded in the audit log")->required();
  label->callback([&ctx, f] {
    ctx.action = [&ctx, f]() -> absl::Status {
      if (f->labels.empty() == !f->clear) {
        return UsageError(absl::InvalidArgumentError("give --label KEY=VALUE or --clear"));
      }
      v1::LabelAgentRequest req;
      req.set_agent_id(f->id);
      ASSIGN_OR_RETURN(auto labels, ParseLabelArgs(f->labels));
      req.mutable_labels()->insert(labels.begin(), labels.end());
      req.set_reason(f->reason);
      ASSIGN_OR_RETURN(auto resp, ctx.client().Call(&v1::AdminService::Stub::LabelAgent, req));
      RenderAgent(resp, ctx, "labelled");
      return absl::OkStatus();
    };
  });
  for (const auto& [name, help] : std::vector<std::pair<std::string, std::string>>{
           {"revoke", "shut an agent out at its next call, on every replica (admin)"},
           {"reset",
            "let an id enroll once more (a reinstalled host): refuses its older credentials "
            "and lifts a revocation (admin)"}}) {
    CLI::App* verb = AddVerb(agents, name, help,
                             {absl::StrCat("ringctl agents ", name,
                                           " host-17 --reason 'laptop "
                                           "stolen'")});
    verb->add_option("id", f->id, "agent id")->required();
    verb->add_option("--reason", f->reason, "why; recorded in the audit log")->required();
    verb->callback([&ctx, f, name = name] {
      ctx.action = [&ctx, f, name]() -> absl::Status {
        v1::AgentActionRequest req;
        req.set_agent_id(f->id);
        req.set_reason(f->reason);
        ASSIGN_OR_RETURN(auto resp,
                         ctx.client().Call(name == "revoke" ? &v1::AdminService::Stub::RevokeAgent
                                                            : &v1::AdminService::Stub::ResetAgent,
                                           req));
        RenderAgent(resp, ctx, name == "revoke" ? "revoked" : "reset");
        return absl::OkStatus();
      };
    });
  }
}

}  // namespace ringwarden

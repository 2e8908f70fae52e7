// token create|list|revoke: the admin credentials ringctl itself uses. The
// token text is printed once, by create; list never shows secrets or hashes.
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/time/clock.h"
#include "cli/commands.h"
#include "cli/ringctl.h"
#include "common/admin_token.h"
#include "common/status_macros.h"

namespace ringwarden {
namespace {

struct TokenFlags {
  std::string name, role, ttl = "30d", reason, id;
  bool force = false;
};

// AdminTokenJson is the documented JSON shape of one token (docs/ringctl.md).
nlohmann::json AdminTokenJson(const v1::AdminToken& t) {
  return {{"id", t.id()},
          {"name", t.name()},
          {"role", t.role()},
          {"created_unix", t.created_unix()},
          {"created_by", t.created_by()},
          {"expires_unix", t.expires_unix()},
          {"revoked_unix", t.revoked_unix()},
          {"revoked_by", t.revoked_by()}};
}

// TokenState is "revoked", "expired" or "active" at `now`.
std::string TokenState(const v1::AdminToken& t, absl::Time now) {
  if (t.revoked_unix() != 0) {
    return "revoked";
  }
  return absl::FromUnixSeconds(t.expires_unix()) <= now ? "expired" : "active";
}

void RenderTokenList(const v1::ListAdminTokensResponse& resp, OutputFormat format,
                     std::ostream& out) {
  if (format == OutputFormat::kJson) {
    nlohmann::json arr = nlohmann::json::array();
    for (const v1::AdminToken& t : resp.tokens()) {
      arr.push_back(AdminTokenJson(t));
    }
    out << arr.dump() << "\n";
    return;
  }
  const absl::Time now = absl::Now();
  Table table({"ID", "NAME", "ROLE", "STATE", "CREATED", "BY", "EXPIRES", "REVOKED"});
  for (const v1::AdminToken& t : resp.tokens()) {
    table.Add({t.id(), t.name(), t.role(), TokenState(t, now), FormatTime(t.created_unix()),
               t.created_by(), FormatTime(t.expires_unix()), FormatTime(t.revoked_unix())});
  }
  table.Print(out);
}

}  // namespace

void AddTokenCommands(CLI::App& app, CommandContext& ctx) {
  auto f = std::make_shared<TokenFlags>();
  CLI::App* token =
      app.add_subcommand("token", "admin tokens: who may call the server (admin role)")
          ->require_subcommand(1);

  CLI::App* create = AddVerb(
      token, "create", "issue a token and print it once; its role may not exceed yours",
      {"ringctl token create --name ci-deploy --role releaser --ttl 30d --reason \"pipeline\"",
       "ringctl token create --name alice --role admin --ttl 24h -o json"});
  create->add_option("--name", f->name, "the person or service (letters, digits, . _ @ -)")
      ->required();
  create->add_option("--role", f->role, "viewer, releaser or admin")
      ->required()
      ->check(CLI::IsMember({"viewer", "releaser", "admin"}));
  create->add_option("--ttl", f->ttl, "lifetime, 1h to 365d: e.g. 90m, 24h, 30d")
      ->capture_default_str();
  create->add_option("--reason", f->reason, "why (audited)");
  create->callback([&ctx, f] {
    ctx.action = [&ctx, f]() -> absl::Status {
      absl::StatusOr<absl::Duration> ttl = ParseAdminTokenTtl(f->ttl);
      if (!ttl.ok()) {
        return UsageError(ttl.status());
      }
      v1::CreateAdminTokenRequest req;
      req.set_name(f->name);
      req.set_role(f->role);
      req.set_ttl_seconds(absl::ToInt64Seconds(*ttl));
      req.set_reason(f->reason);
      ASSIGN_OR_RETURN(auto resp,
                       ctx.client().Call(&v1::AdminService::Stub::CreateAdminToken, req));
      if (ctx.format() == OutputFormat::kJson) {
        nlohmann::json doc = AdminTokenJson(resp.token());
        doc["token"] = resp.secret_token();
        ctx.out << doc.dump() << "\n";
      } else {
        ctx.err << "created token " << resp.token().id() << " for " << resp.token().name() << " ("
                << resp.token().role() << "), expires " << FormatTime(resp.token().expires_unix())
                << " UTC; it is shown once, keep it in a secret store\n";
        ctx.out << resp.secret_token() << "\n";
      }
      return absl::OkStatus();
    };
  });

  CLI::App* list = AddVerb(token, "list", "list tokens (never their secrets)",
                           {"ringctl token list", "ringctl token list -o json"});
  list->callback([&ctx] {
    ctx.action = [&ctx]() -> absl::Status {
      ASSIGN_OR_RETURN(auto resp, ctx.client().Call(&v1::AdminService::Stub::ListAdminTokens,
                                                    v1::ListAdminTokensRequest()));
      RenderTokenList(resp, ctx.format(), ctx.out);
      return absl::OkStatus();
    };
  });

  CLI::App* revoke =
      AddVerb(token, "revoke", "revoke a token from its next call on",
              {"ringctl token revoke 3f9a0c12d4e5 --reason \"laptop lost\"",
               "ringctl token revoke 3f9a0c12d4e5 --force --reason \"INC-7: admin key leaked\""});
  revoke->add_option("id", f->id, "token id (ringctl token list)")->required();
  revoke->add_flag("--force", f->force,
                   "revoke even the last unexpired admin token (needs --reason)");
  revoke->add_option("--reason", f->reason, "why (audited)");
  revoke->callback([&ctx, f] {
    ctx.action = [&ctx, f]() -> absl::Status {
      v1::RevokeAdminTokenRequest req;
      req.set_id(f->id);
      req.set_force(f->force);
      req.set_reason(f->reason);
      ASSIGN_OR_RETURN(auto resp,
                       ctx.client().Call(&v1::AdminService::Stub::RevokeAdminToken, req));
      if (ctx.format() == OutputFormat::kJson) {
        ctx.out << AdminTokenJson(resp).dump() << "\n";
      } else {
        ctx.out << "revoked token " << resp.id() << " (" << resp.name() << ", " << resp.role()
                << ")\n";
      }
      return absl::OkStatus();
    };
  });
}

}  // namespace ringwarden

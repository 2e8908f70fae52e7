// policy set/show, pin set/list and emergency-stop.
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/files.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace ringwarden {
namespace {

struct PolicyFlags {
  std::string name = "default", file, reason;
  int64_t version = 0;
};

struct PinFlags {
  std::string label, channel, policy, reason;
};

struct StopFlags {
  bool lift = false;
  std::string reason;
};

}  // namespace

void AddOperatorCommands(CLI::App& app, CommandContext& ctx) {
  auto po = std::make_shared<PolicyFlags>();
  CLI::App* policy =
      app.add_subcommand("policy", "rollout policies (stage gates)")->require_subcommand(1);
  CLI::App* policy_set =
      AddVerb(policy, "set", "store a new version of a policy from a JSON file",
              {"ringctl policy set default --file policy.json --reason \"faster canary\""});
  policy_set->add_option("name", po->name, "policy name")->required();
  policy_set->add_option("--file", po->file, "policy JSON (keys left out keep defaults)")
      ->required();
  policy_set->add_option("--reason", po->reason, "why (audited)");
  policy_set->callback([&ctx, po] {
    ctx.action = [&ctx, po]() -> absl::Status {
      ASSIGN_OR_RETURN(std::string body, ReadFileAtMost(po->file, 64 * 1024));
      v1::SetPolicyRequest req;
      req.set_name(po->name);
      req.set_policy_json(body);
      req.set_reason(po->reason);
      ASSIGN_OR_RETURN(auto resp, ctx.client().Call(&v1::AdminService::Stub::SetPolicy, req));
      RenderPolicy(resp, ctx.format(), ctx.out);
      return absl::OkStatus();
    };
  });
  CLI::App* policy_show =
      AddVerb(policy, "show", "show a policy (newest version unless --version)",
              {"ringctl policy show default", "ringctl policy show strict --version 2 -o json"});
  policy_show->add_option("name", po->name, "policy name")->capture_default_str();
  policy_show->add_option("--version", po->version, "version (default: newest)");
  policy_show->callback([&ctx, po] {
    ctx.action = [&ctx, po]() -> absl::Status {
      v1::GetPolicyRequest req;
      req.set_name(po->name);
      req.set_version(po->version);
      ASSIGN_OR_RETURN(auto resp, ctx.client().Call(&v1::AdminService::Stub::GetPolicy, req));
      RenderPolicy(resp, ctx.format(), ctx.out);
      return absl::OkStatus();
    };
  });

  auto e = std::make_shared<StopFlags>();
  CLI::App* estop = AddVerb(&app, "emergency-stop",
                            "freeze every rollout of every channel; agents apply nothing new",
                            {"ringctl emergency-stop --reason \"INC-9 investigating\"",
                             "ringctl emergency-stop --lift --reason \"INC-9 resolved\""});
  estop->add_flag("--lift", e->lift, "lift the emergency stop");
  estop->add_option("--reason", e->reason, "why (required, audited)")->required();
  estop->callback([&ctx, e] {
    ctx.action = [&ctx, e]() -> absl::Status {
      v1::EmergencyStopRequest req;
      req.set_lift(e->lift);
      req.set_reason(e->reason);
      ASSIGN_OR_RETURN(auto resp, ctx.client().Call(&v1::AdminService::Stub::EmergencyStop, req));
      RenderEmergencyStop(resp.active(), ctx.format(), ctx.out);
      return absl::OkStatus();
    };
  });

  auto p = std::make_shared<PinFlags>();
  CLI::App* pin =
      app.add_subcommand("pin", "version policy per agent group")->require_subcommand(1);
  CLI::App* pin_set =
      AddVerb(pin, "set", "pin agents with a label to latest, n-1 or a version",
              {"ringctl pin set --label group=payments --channel rules.behavioral n-1",
               "ringctl pin set --label group=payments --channel rules.behavioral latest"});
  pin_set->add_option("--label", p->label, "label key=value")->required();
  pin_set->add_option("--channel", p->channel, "channel")->required();
  pin_set->add_option("policy", p->policy, "latest, n-1 or a version number")->required();
  pin_set->add_option("--reason", p->reason, "why (audited)");
  pin_set->callback([&ctx, p] {
    ctx.action = [&ctx, p]() -> absl::Status {
      std::pair<std::string, std::string> kv = absl::StrSplit(p->label, absl::MaxSplits('=', 1));
      if (p->label.find('=') == std::string::npos || kv.first.empty()) {
        return absl::InvalidArgumentError("--label must be key=value");
      }
      v1::SetPinRequest req;
      req.set_label_key(kv.first);
      req.set_label_value(kv.second);
      req.set_channel(p->channel);
      req.set_policy(p->policy);
      req.set_reason(p->reason);
      ASSIGN_OR_RETURN(auto resp, ctx.client().Call(&v1::AdminService::Stub::SetPin, req));
      RenderPin(resp, ctx.format(), ctx.out);
      return absl::OkStatus();
    };
  });
  CLI::App* pin_list =
      AddVerb(pin, "list", "list pins", {"ringctl pin list", "ringctl pin list -o json"});
  pin_list->callback([&ctx] {
    ctx.action = [&ctx]() -> absl::Status {
      ASSIGN_OR_RETURN(auto resp,
                       ctx.client().Call(&v1::AdminService::Stub::ListPins, v1::ListPinsRequest()));
      RenderPins(resp, ctx.format(), ctx.out);
      return absl::OkStatus();
    };
  });
}

}  // namespace ringwarden

// content sign, upload and list.
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/time/clock.h"
#include "cli/commands.h"
#include "cli/files.h"
#include "cli/signing.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace ringwarden {
namespace {

// Envelopes are small; the server refuses more than 64 KiB.
constexpr size_t kMaxEnvelopeBytes = 64 * 1024;

struct ContentFlags {
  std::string key, channel, description, out, file, envelope;
  int64_t version = 0;
};

}  // namespace

void AddContentCommands(CLI::App& app, CommandContext& ctx) {
  auto c = std::make_shared<ContentFlags>();
  CLI::App* content =
      app.add_subcommand("content", "sign, upload and list content")->require_subcommand(1);

  CLI::App* sign = AddVerb(
      content, "sign", "sign a content file offline: writes FILE.dsse.json",
      {"ringctl content sign --key release.pem --channel rules.behavioral --version 42 rules.bin"});
  sign->add_option("--key", c->key, "Ed25519 private key PEM")->required();
  sign->add_option("--channel", c->channel, "channel, e.g. rules.behavioral")->required();
  sign->add_option("--version", c->version, "version number (>= 1)")->required();
  sign->add_option("--description", c->description, "free text for the manifest");
  sign->add_option("--out", c->out, "envelope path (default FILE.dsse.json)");
  sign->add_option("file", c->file, "content file")->required();
  sign->callback([&ctx, c] {
    ctx.needs_server = false;
    ctx.action = [&ctx, c]() -> absl::Status {
      ASSIGN_OR_RETURN(std::string key, ReadFileAtMost(c->key, 64 * 1024));
      ASSIGN_OR_RETURN(std::string payload, ReadFileAtMost(c->file, kMaxReadBytes));
      ASSIGN_OR_RETURN(std::string envelope, SignContent({key, c->channel, c->version, payload,
                                                          c->description, absl::Now()}));
      const std::string path = c->out.empty() ? c->file + ".dsse.json" : c->out;
      RETURN_IF_ERROR(WriteFileAtomically(path, envelope));
      if (ctx.format() == OutputFormat::kJson) {
        ctx.out << nlohmann::json{{"envelope", path},
                                  {"channel", c->channel},
                                  {"version", c->version}}
                       .dump()
                << "\n";
      } else {
        ctx.out << "signed " << c->channel << " v" << c->version << " -> " << path << "\n";
      }
      return absl::OkStatus();
    };
  });

  CLI::App* upload =
      AddVerb(content, "upload", "upload signed content; the server verifies the envelope",
              {"ringctl content upload rules.bin",
               "ringctl content upload --envelope signed/rules.dsse.json rules.bin"});
  upload->add_option("--envelope", c->envelope, "envelope path (default FILE.dsse.json)");
  upload->add_option("file", c->file, "content file")->required();
  upload->callback([&ctx, c] {
    ctx.action = [&ctx, c]() -> absl::Status {
      ASSIGN_OR_RETURN(std::string envelope,
                       ReadFileAtMost(c->envelope.empty() ? c->file + ".dsse.json" : c->envelope,
                                      kMaxEnvelopeBytes));
      ASSIGN_OR_RETURN(std::string payload, ReadFileAtMost(c->file, kMaxReadBytes));
      v1::UploadContentRequest req;
      req.set_envelope(envelope);
      req.set_payload(payload);
      ASSIGN_OR_RETURN(auto resp, ctx.client().Call(&v1::AdminService::Stub::UploadContent, req));
      RenderUploaded(resp.content(), ctx.format(), ctx.out);
      return absl::OkStatus();
    };
  });

  CLI::App* list = AddVerb(content, "list", "list uploaded content",
                           {"ringctl content list",
                            "ringctl content list --channel "
                            "rules.behavioral -o json"});
  list->add_option("--channel", c->channel, "only this channel");
  list->callback([&ctx, c] {
    ctx.action = [&ctx, c]() -> absl::Status {
      v1::ListContentRequest req;
      req.set_channel(c->channel);
      ASSIGN_OR_RETURN(auto resp, ctx.client().Call(&v1::AdminService::Stub::ListContent, req));
      RenderContentList(resp, ctx.format(), ctx.out);
      return absl::OkStatus();
    };
  });
}

}  // namespace ringwarden

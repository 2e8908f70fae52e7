// keys root create|sign|upload, keys inspect, floor sign|upload and trust list:
// the root of trust and channel floors. Everything but the uploads and the list
// runs offline, on a release engineer's machine that is not the server.
#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/commands.h"
#include "cli/files.h"
#include "cli/inspect.h"
#include "cli/ringctl.h"
#include "cli/signing.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "common/trust/trust.h"

namespace ringwarden {
namespace {

// A key PEM is a few hundred bytes; anything this large is the wrong file.
constexpr size_t kMaxKeyFileBytes = 64 * 1024;

struct RootFlags {
  int64_t version = 0;
  std::string expires;
  std::vector<std::string> root_keys, release_keys, server_keys, sign_with;
  int root_threshold = 1, release_threshold = 1, server_threshold = 1;
  CLI::Option* root_threshold_opt = nullptr;
  CLI::Option* release_threshold_opt = nullptr;
  std::string out, key, file, trusted_root;
};

struct FloorFlags {
  std::vector<std::string> keys;
  std::string channel, out;
  int64_t version = 0;
};

const Ed25519PublicKey& PublicOf(const Ed25519PublicKey& key) { return key; }
const Ed25519PublicKey& PublicOf(const Ed25519PrivateKey& key) { return key.PublicKey(); }

absl::StatusOr<Ed25519PrivateKey> PrivateKeyFromPem(absl::string_view pem) {
  return Ed25519PrivateKey::FromPem(pem);
}

// LoadKeys reads the PEM files given to `flag` with `parse`; every failure
// names the flag and the file, and the same key in two files names both.
template <typename Key>
absl::StatusOr<std::vector<Key>> LoadKeys(const std::string& flag,
                                          const std::vector<std::string>& paths,
                                          absl::StatusOr<Key> (*parse)(absl::string_view)) {
  std::vector<Key> keys;
  std::vector<std::string> loaded_from;
  for (const std::string& path : paths) {
    absl::StatusOr<std::string> pem = ReadFileAtMost(path, kMaxKeyFileBytes);
    if (!pem.ok()) {
      return absl::Status(pem.status().code(),
                          absl::StrCat(flag, " ", path, ": ", pem.status().message()));
    }
    absl::StatusOr<Key> key = parse(*pem);
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, " ", path, ": ", key.status().message()));
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      if (PublicOf(keys[i]).KeyId() == PublicOf(*key).KeyId()) {
        return absl::InvalidArgumentError(absl::StrCat(flag, " ", loaded_from[i], " and ", path,
                                                       " hold the same key ",
                                                       PublicOf(*key).KeyId()));
      }
    }
    keys.push_back(*std::move(key));
    loaded_from.push_back(path);
  }
  return keys;
}

// ReadInput reads an envelope file named on the command line (by `flag`, or
// positionally when `flag` is empty); a file it cannot read is a usage error.
absl::StatusOr<std::string> ReadInput(const std::string& flag, const std::string& path) {
  absl::StatusOr<std::string> data = ReadFileAtMost(path, kMaxEnvelopeJsonBytes);
  if (data.ok()) {
    return data;
  }
  if (flag.empty()) {
    return UsageError(data.status());
  }
  return UsageError(
      absl::Status(data.status().code(), absl::StrCat(flag, " ", data.status().message())));
}

// ParseExpiry reads --expires: a duration from now ("365d", "720h", "90m") or
// a UTC time ("2026-01-31", "2026-01-31T00:00:00Z").
absl::StatusOr<absl::Time> ParseExpiry(const std::string& text, absl::Time now) {
  int64_t days = 0;
  if (absl::EndsWith(text, "d") && absl::SimpleAtoi(text.substr(0, text.size() - 1), &days)) {
    return now + absl::Hours(24) * days;
  }
  absl::Duration duration;
  if (absl::ParseDuration(text, &duration)) {
    return now + duration;
  }
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &err) ||
      absl::ParseTime("%Y-%m-%d", text, absl::UTCTimeZone(), &t, &err)) {
    return t;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--expires \"", text,
                   "\" is neither a duration (365d, 720h) nor a UTC time (2026-01-31 or "
                   "2026-01-31T00:00:00Z)"));
}

// RoleFlags loads one role's keys. With `threshold_opt`, the threshold must be
// given when the role has more than one key, so three root or release keys
// never silently mean "any one of them". Server keys pass null: several server
// keys are replicas or a key rollover, and any one of them signing is the norm.
absl::StatusOr<RoleKeys> RoleFlags(const std::string& name, const std::vector<std::string>& paths,
                                   int threshold, const CLI::Option* threshold_opt) {
  RoleKeys role;
  ASSIGN_OR_RETURN(role.keys, LoadKeys<Ed25519PublicKey>(absl::StrCat("--", name, "-key"), paths,
                                                         &PublicKeyFromPem));
  if (threshold_opt != nullptr && threshold_opt->count() == 0 && role.keys.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, "-threshold is required when --",
                                                   name, "-key names ", role.keys.size(), " keys"));
  }
  role.threshold = threshold;
  return role;
}

// CheckOutPath refuses `-o json`: on these verbs -o names the file to write.
absl::Status CheckOutPath(const std::string& out) {
  if (out == "json" || out == "table") {
    return absl::InvalidArgumentError(
        "-o names the file to write here, not a format; for JSON output use --output json");
  }
  return absl::OkStatus();
}

void PrintWarnings(CommandContext& ctx, const std::vector<std::string>& warnings) {
  for (const std::string& warning : warnings) {
    ctx.err << "ringctl: warning: " << warning << "\n";
  }
}

// PrintRootWritten says what a root file now holds and, while its own root
// keys have not reached their threshold, who still has to sign.
void PrintRootWritten(CommandContext& ctx, const std::string& verb, const std::string& path,
                      const SignedRoot& root) {
  const RootSpec& spec = root.root;
  if (ctx.format() == OutputFormat::kJson) {
    ctx.out << nlohmann::json{{"envelope", path},
                              {"kind", "root"},
                              {"version", spec.version},
                              {"expires_unix", absl::ToUnixSeconds(spec.expires)},
                              {"key_ids", root.signer_key_ids}}
                   .dump()
            << "\n";
    return;
  }
  const std::vector<std::string>& own = spec.root.keyids;
  const auto own_signatures = std::count_if(
      root.signer_key_ids.begin(), root.signer_key_ids.end(),
      [&](const std::string& id) { return std::find(own.begin(), own.end(), id) != own.end(); });
  ctx.out << verb << " root v" << spec.version << " -> " << path << " (expires "
          << FormatTime(absl::ToUnixSeconds(spec.expires)) << ")\n"
          << "signatures: " << root.signer_key_ids.size()
          << "; by its own root keys: " << own_signatures << " of the " << spec.root.threshold
          << " needed\n";
  if (own_signatures < spec.root.threshold) {
    ctx.out << "next: each root key holder runs: ringctl keys root sign --key ROOT_KEY.pem " << path
            << "\n";
  }
  if (verb == "created" && spec.version > 1) {
    const int64_t previous = spec.version - 1;
    ctx.out << absl::StrCat("v", spec.version, " also needs a threshold of v", previous,
                            "'s root keys: ringctl keys root sign --key OLD_ROOT_KEY.pem "
                            "--trusted-root ROOT_V",
                            previous, ".json ", path, "\n");
  }
}

// UploadRequest reads `path`, refuses locally what is plainly not a signed
// `kind` envelope, and builds the request.
absl::StatusOr<v1::UploadTrustMetadataRequest> UploadRequest(const std::string& path,
                                                             const std::string& kind,
                                                             const std::string& reason) {
  ASSIGN_OR_RETURN(std::string envelope, ReadInput("", path));
  absl::StatusOr<DsseEnvelope> parsed = ParseEnvelopeForSigning(envelope);
  if (!parsed.ok()) {
    return UsageError(
        absl::InvalidArgumentError(absl::StrCat(path, ": ", parsed.status().message())));
  }
  const std::string actual = EnvelopeKind(parsed->payload_type);
  if (actual != kind) {
    return UsageError(absl::InvalidArgumentError(
        absl::StrCat(path, " is ", actual.empty() ? "not one of our envelopes" : "a " + actual,
                     ", not a ", kind)));
  }
  if (parsed->signatures.empty()) {
    return UsageError(
        absl::InvalidArgumentError(absl::StrCat(path, " has no signatures yet; sign it first")));
  }
  v1::UploadTrustMetadataRequest request;
  request.set_envelope(envelope);
  request.set_reason(reason);
  return request;
}

// CreateRootFile runs `keys root create`; every failure is the arguments'.
absl::Status CreateRootFile(CommandContext& ctx, const RootFlags& flags) {
  RETURN_IF_ERROR(CheckOutPath(flags.out));
  RootRequest request;
  request.version = flags.version;
  request.now = absl::Now();
  ASSIGN_OR_RETURN(request.expires, ParseExpiry(flags.expires, request.now));
  ASSIGN_OR_RETURN(request.root, RoleFlags("root", flags.root_keys, flags.root_threshold,
                                           flags.root_threshold_opt));
  ASSIGN_OR_RETURN(request.release,
                   RoleFlags("release", flags.release_keys, flags.release_threshold,
                             flags.release_threshold_opt));
  ASSIGN_OR_RETURN(request.server,
                   RoleFlags("server", flags.server_keys, flags.server_threshold, nullptr));
  ASSIGN_OR_RETURN(std::vector<Ed25519PrivateKey> signers,
                   LoadKeys<Ed25519PrivateKey>("--sign-with", flags.sign_with, &PrivateKeyFromPem));
  for (const Ed25519PrivateKey& key : signers) {
    request.signers.push_back(&key);
  }
  ASSIGN_OR_RETURN(SignedRoot made, CreateRoot(request));
  RETURN_IF_ERROR(WriteFileAtomically(flags.out, made.envelope_json));
  PrintWarnings(ctx, made.warnings);
  PrintRootWritten(ctx, "created", flags.out, made);
  return absl::OkStatus();
}

// SignRootFile runs `keys root sign`: unusable arguments exit 1, a root file
// that must not be signed (tampered, already signed by this key) exits 2.
absl::Status SignRootFile(CommandContext& ctx, const RootFlags& flags) {
  const std::string out = flags.out.empty() ? flags.file : flags.out;
  RETURN_IF_ERROR(UsageError(CheckOutPath(out)));
  absl::StatusOr<std::vector<Ed25519PrivateKey>> key =
      LoadKeys<Ed25519PrivateKey>("--key", {flags.key}, &PrivateKeyFromPem);
  RETURN_IF_ERROR(UsageError(key.status()));
  ASSIGN_OR_RETURN(std::string envelope, ReadInput("", flags.file));
  std::optional<RootSpec> previous;
  if (!flags.trusted_root.empty()) {
    ASSIGN_OR_RETURN(std::string previous_json, ReadInput("--trusted-root", flags.trusted_root));
    absl::StatusOr<RootSpec> decoded = DecodeRootUnverified(previous_json);
    if (!decoded.ok()) {
      return UsageError(absl::Status(
          decoded.status().code(),
          absl::StrCat("--trusted-root ", flags.trusted_root, ": ", decoded.status().message())));
    }
    previous = *std::move(decoded);
  }
  absl::StatusOr<SignedRoot> signed_root =
      AddRootSignature(envelope, key->front(), previous.has_value() ? &*previous : nullptr);
  if (!signed_root.ok()) {
    return absl::Status(signed_root.status().code(),
                        absl::StrCat(flags.file, ": ", signed_root.status().message()));
  }
  RETURN_IF_ERROR(UsageError(WriteFileAtomically(out, signed_root->envelope_json)));
  PrintWarnings(ctx, signed_root->warnings);
  PrintRootWritten(ctx, "signed", out, *signed_root);
  return absl::OkStatus();
}

// InspectFile runs `keys inspect`; with --trusted-root it fails (exit 2) when
// the file does not verify against it, after printing what it found.
absl::Status InspectFile(CommandContext& ctx, const RootFlags& flags) {
  InspectRequest request;
  request.path = flags.file;
  request.now = absl::Now();
  ASSIGN_OR_RETURN(request.envelope_json, ReadInput("", flags.file));
  if (!flags.trusted_root.empty()) {
    request.trusted_root_path = flags.trusted_root;
    ASSIGN_OR_RETURN(request.trusted_root_json, ReadInput("--trusted-root", flags.trusted_root));
  }
  ASSIGN_OR_RETURN(Inspection inspection, InspectEnvelope(request));
  RenderInspection(inspection.report, ctx.format(), ctx.out);
  return inspection.verdict;
}

// SignFloorFile runs `floor sign`; every failure is the arguments'.
absl::Status SignFloorFile(CommandContext& ctx, const FloorFlags& flags) {
  RETURN_IF_ERROR(CheckOutPath(flags.out));
  ASSIGN_OR_RETURN(std::vector<Ed25519PrivateKey> keys,
                   LoadKeys<Ed25519PrivateKey>("--key", flags.keys, &PrivateKeyFromPem));
  FloorRequest request;
  request.channel = flags.channel;
  request.min_version = flags.version;
  request.now = absl::Now();
  std::vector<std::string> key_ids;
  for (const Ed25519PrivateKey& key : keys) {
    request.keys.push_back(&key);
    key_ids.push_back(key.PublicKey().KeyId());
  }
  ASSIGN_OR_RETURN(std::string envelope, SignFloor(request));
  RETURN_IF_ERROR(WriteFileAtomically(flags.out, envelope));
  if (ctx.format() == OutputFormat::kJson) {
    ctx.out << nlohmann::json{{"envelope", flags.out},
                              {"kind", "floor"},
                              {"channel", flags.channel},
                              {"version", flags.version},
                              {"key_ids", key_ids}}
                   .dump()
            << "\n";
  } else {
    ctx.out << "signed floor " << flags.channel << " >= v" << flags.version << " -> " << flags.out
            << "\nnext: ringctl floor upload " << flags.out << " --reason \"...\"\n";
  }
  return absl::OkStatus();
}

// UploadMethod is AdminService.UploadRoot or UploadFloor.
using UploadMethod = grpc::Status (v1::AdminService::Stub::*)(grpc::ClientContext*,
                                                              const v1::UploadTrustMetadataRequest&,
                                                              v1::TrustMetadata*);

// AddUploadVerb adds `PARENT upload FILE --reason TEXT`, which sends a signed
// `kind` envelope with `method` and prints what the server kept.
void AddUploadVerb(CLI::App* parent, CommandContext& ctx, const std::string& kind,
                   const std::string& description, const std::string& example,
                   UploadMethod method) {
  struct UploadFlags {
    std::string file, reason;
  };
  auto u = std::make_shared<UploadFlags>();
  CLI::App* upload = AddVerb(parent, "upload", description, {example});
  upload->add_option("file", u->file, kind + " file")->required();
  upload->add_option("--reason", u->reason, "why (required, audited)")->required();
  upload->callback([&ctx, u, kind, method] {
    ctx.action = [&ctx, u, kind, method]() -> absl::Status {
      ASSIGN_OR_RETURN(v1::UploadTrustMetadataRequest request,
                       UploadRequest(u->file, kind, u->reason));
      ASSIGN_OR_RETURN(v1::TrustMetadata response, ctx.client().Call(method, request));
      RenderTrustUploaded(response, ctx.format(), ctx.out);
      return absl::OkStatus();
    };
  });
}

void AddKeysCommands(CLI::App& app, CommandContext& ctx) {
  auto r = std::make_shared<RootFlags>();
  CLI::App* keys = app.add_subcommand("keys",
                                      "root of trust: create, sign, inspect and upload "
                                      "root metadata")
                       ->require_subcommand(1);
  CLI::App* root =
      keys->add_subcommand("root", "root metadata: who may sign what")->require_subcommand(1);

  CLI::App* create = AddVerb(
      root, "create", "build root metadata offline; root key holders then sign the file",
      {"ringctl keys root create --version 1 --expires 365d --root-key root.pem "
       "--release-key release.pub --server-key server.pub --sign-with root.pem -o root.json",
       "ringctl keys root create --version 2 --expires 365d --root-key a.pub --root-key b.pub "
       "--root-threshold 2 --release-key release.pub --server-key server2.pub -o root-v2.json"});
  create->add_option("--version", r->version, "root version: 1, or the stored root's + 1")
      ->required();
  create
      ->add_option("--expires", r->expires,
                   "when agents stop trusting it: 365d, 720h, or a UTC time 2026-01-31")
      ->required();
  create->add_option("--root-key", r->root_keys, "root key PEM, public or private; repeat")
      ->required();
  r->root_threshold_opt = create->add_option(
      "--root-threshold", r->root_threshold,
      "root keys that must sign a root (default 1; required with several root keys)");
  create
      ->add_option("--release-key", r->release_keys,
                   "release key PEM (signs content and floors); repeat")
      ->required();
  r->release_threshold_opt =
      create->add_option("--release-threshold", r->release_threshold,
                         "release keys that must sign (default 1; required with several)");
  create
      ->add_option("--server-key", r->server_keys,
                   "server key PEM (signs assignments online); repeat")
      ->required();
  create->add_option("--server-threshold", r->server_threshold,
                     "server keys that must sign an assignment (default 1)");
  create->add_option("--sign-with", r->sign_with,
                     "private root key PEM to sign with now; repeat (or sign later)");
  create->add_option("-o,--out", r->out, "root file to write")->required();
  create->callback([&ctx, r] {
    ctx.needs_server = false;
    ctx.action = [&ctx, r] { return UsageError(CreateRootFile(ctx, *r)); };
  });

  CLI::App* sign = AddVerb(
      root, "sign", "add your root key's signature to a root file (each signer on their machine)",
      {"ringctl keys root sign --key root-b.pem root-v2.json",
       "ringctl keys root sign --key old-root.pem --trusted-root root-v1.json root-v2.json"});
  sign->add_option("--key", r->key, "your private root key PEM")->required();
  sign->add_option("--trusted-root", r->trusted_root,
                   "the root this one follows: also check signatures made with its keys");
  sign->add_option("-o,--out", r->out, "file to write (default: the root file, in place)");
  sign->add_option("file", r->file, "root file")->required();
  sign->callback([&ctx, r] {
    ctx.needs_server = false;
    ctx.action = [&ctx, r] { return SignRootFile(ctx, *r); };
  });

  AddUploadVerb(root, ctx, "root",
                "upload a signed root; the server keeps it if it follows the stored root",
                "ringctl keys root upload root-v2.json --reason \"rotate the server key\"",
                &v1::AdminService::Stub::UploadRoot);

  CLI::App* inspect = AddVerb(
      keys, "inspect",
      "show what a root, floor, content or assignment envelope says and which signatures verify",
      {"ringctl keys inspect root.json",
       "ringctl keys inspect --trusted-root root-v1.json root-v2.json   # exit 2 unless valid",
       "ringctl keys inspect --trusted-root root.json floor.json -o json"});
  inspect->add_option("--trusted-root", r->trusted_root,
                      "a root you trust: check the file against it (exit 2 if it fails)");
  inspect->add_option("file", r->file, "envelope file")->required();
  inspect->callback([&ctx, r] {
    ctx.needs_server = false;
    ctx.action = [&ctx, r] { return InspectFile(ctx, *r); };
  });
}

void AddFloorCommands(CLI::App& app, CommandContext& ctx) {
  auto f = std::make_shared<FloorFlags>();
  CLI::App* floor =
      app.add_subcommand("floor", "channel floors: the lowest version agents may ever run")
          ->require_subcommand(1);
  CLI::App* sign = AddVerb(floor, "sign", "sign a channel floor offline with the release key",
                           {"ringctl floor sign --key release.pem --channel rules.behavioral "
                            "--version 40 -o floor.json"});
  sign->add_option("--key", f->keys, "private release key PEM; repeat for a threshold")->required();
  sign->add_option("--channel", f->channel, "channel, e.g. rules.behavioral")->required();
  sign->add_option("--version", f->version, "lowest version agents may run (>= 1)")->required();
  sign->add_option("-o,--out", f->out, "floor file to write")->required();
  sign->callback([&ctx, f] {
    ctx.needs_server = false;
    ctx.action = [&ctx, f] { return UsageError(SignFloorFile(ctx, *f)); };
  });

  AddUploadVerb(floor, ctx, "floor",
                "upload a signed floor; rollouts and pins below it are refused",
                "ringctl floor upload floor.json --reason \"v39 crashes; never again\"",
                &v1::AdminService::Stub::UploadFloor);
}

void AddTrustListCommand(CLI::App& app, CommandContext& ctx) {
  CLI::App* trust =
      app.add_subcommand("trust", "the roots and floors the server stores")->require_subcommand(1);
  CLI::App* list = AddVerb(trust, "list", "list stored roots and floors",
                           {"ringctl trust list", "ringctl trust list -o json"});
  list->callback([&ctx] {
    ctx.action = [&ctx]() -> absl::Status {
      ASSIGN_OR_RETURN(auto response, ctx.client().Call(&v1::AdminService::Stub::ListTrust,
                                                        v1::ListTrustRequest()));
      RenderTrustList(response, ctx.format(), ctx.out);
      return absl::OkStatus();
    };
  });
}

}  // namespace

void AddTrustCommands(CLI::App& app, CommandContext& ctx) {
  AddKeysCommands(app, ctx);
  AddFloorCommands(app, ctx);
  AddTrustListCommand(app, ctx);
}

}  // namespace ringwarden

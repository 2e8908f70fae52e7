// ringctl's root of trust and floors: keys root create/sign, keys inspect and
// floor sign offline with PEM files like `openssl genpkey -algorithm ed25519`
// makes, signatures made by stock openssl over the PAE bytes, refusals and
// their exit codes, the inspect report (goldens), and the uploads and list
// against the fake AdminService.
#include "common/trust/trust.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/inspect.h"
#include "cli/ringctl.h"
#include "cli/signing.h"
#include "common/dsse.h"
#include "common/ed25519.h"
#include "ringwarden/v1/trust.pb.h"
#include "tests/cli/fake_admin_service.h"
#include "tests/cli/test_util.h"

namespace ringwarden::cli_testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using json = nlohmann::json;

// kFixedNow: 2024-07-19 04:00:00 UTC, for goldens.
const absl::Time kFixedNow = absl::FromUnixSeconds(1721361600);

// RunShell runs `script` with /bin/sh and reports whether it exited 0.
bool RunShell(const std::string& script) {
  const int rc = std::system(script.c_str());
  return rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
}

Ed25519PrivateKey KeyFromSeed(char seed) {
  absl::StatusOr<Ed25519PrivateKey> key = Ed25519PrivateKey::FromSeed(std::string(32, seed));
  EXPECT_TRUE(key.ok()) << key.status();
  return *std::move(key);
}

// FirstRoot is root 1 made at `made` for `lifetime`: `root_key` is its root key
// and signs it, 'r' is the release key and 's' the server key.
RootRequest FirstRoot(const Ed25519PrivateKey& root_key, absl::Time made, absl::Duration lifetime) {
  RootRequest request;
  request.version = 1;
  request.now = made;
  request.expires = made + lifetime;
  request.root.keys = {root_key.PublicKey()};
  request.release.keys = {KeyFromSeed('r').PublicKey()};
  request.server.keys = {KeyFromSeed('s').PublicKey()};
  request.signers = {&root_key};
  return request;
}

json Json(const CliRun& run) {
  json doc = json::parse(run.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(doc.is_discarded()) << run.out << run.err;
  return doc;
}

// CheckOk finds the named check in an inspect report and says whether it passed.
bool CheckOk(const json& report, const std::string& name) {
  for (const json& check : report["checks"]) {
    if (check["name"] == name) {
      return check["ok"] == true;
    }
  }
  ADD_FAILURE() << "no check " << name << " in " << report.dump();
  return false;
}

class TrustCliTest : public ::testing::Test {
 protected:
  // Key writes NAME.pem (PKCS#8 private) and NAME.pub (public) for a fixed seed.
  void Key(const std::string& name, char seed) {
    const Ed25519PrivateKey key = KeyFromSeed(seed);
    dir_.Write(name + ".pem", key.ToPem());
    dir_.Write(name + ".pub", key.PublicKey().ToPem());
  }
  std::string Pem(const std::string& name) const { return dir_.File(name + ".pem"); }
  std::string Pub(const std::string& name) const { return dir_.File(name + ".pub"); }
  std::string File(const std::string& name) const { return dir_.File(name); }

  // CreateArgs: a root naming `root_keys` (threshold `threshold`), the release
  // key and `server`, written to `out`.
  std::vector<std::string> CreateArgs(int version, const std::vector<std::string>& root_keys,
                                      int threshold, const std::string& server,
                                      const std::string& out) const {
    std::vector<std::string> args = {
        "keys", "root", "create", "--version", absl::StrCat(version), "--expires", "365d"};
    for (const std::string& k : root_keys) {
      args.insert(args.end(), {"--root-key", Pub(k)});
    }
    args.insert(args.end(), {"--root-threshold", absl::StrCat(threshold), "--release-key",
                             Pub("release"), "--server-key", Pub(server), "-o", File(out)});
    return args;
  }

  CliRun Sign(const std::string& key, const std::string& file,
              const std::string& trusted_root = "") const {
    std::vector<std::string> args = {"keys", "root", "sign", "--key", Pem(key), File(file)};
    if (!trusted_root.empty()) {
      args.insert(args.end(), {"--trusted-root", File(trusted_root)});
    }
    return Ringctl(args);
  }

  CliRun Inspect(const std::string& file, const std::string& trusted_root = "") const {
    std::vector<std::string> args = {"keys", "inspect", File(file), "-o", "json"};
    if (!trusted_root.empty()) {
      args.insert(args.end(), {"--trusted-root", File(trusted_root)});
    }
    return Ringctl(args);
  }

  void SetUp() override {
    Key("root1", '1');
    Key("root2", '2');
    Key("root3", '3');
    Key("release", 'r');
    Key("server", 's');
    Key("server2", 't');
  }

  // MakeRoot1 writes root1.json: root key root1, signed by it.
  void MakeRoot1() {
    std::vector<std::string> args = CreateArgs(1, {"root1"}, 1, "server", "root1.json");
    args.insert(args.end(), {"--sign-with", Pem("root1")});
    CliRun r = Ringctl(args);
    ASSERT_EQ(r.code, kExitOk) << r.err;
  }

  ScopedEnv env_;
  TempDir dir_;
};

TEST_F(TrustCliTest, CreateSignInspectRoundTrip) {
  CliRun created = Ringctl(CreateArgs(1, {"root1"}, 1, "server", "root.json"));
  ASSERT_EQ(created.code, kExitOk) << created.err;
  EXPECT_THAT(created.out, HasSubstr("created root v1 -> " + File("root.json")));
  EXPECT_THAT(created.out, HasSubstr("ringctl keys root sign --key ROOT_KEY.pem"));

  // Not signed yet: inspect shows it and says it is not a valid root (exit 0).
  CliRun unsigned_root = Inspect("root.json");
  ASSERT_EQ(unsigned_root.code, kExitOk) << unsigned_root.err;
  json report = Json(unsigned_root);
  EXPECT_EQ(report["kind"], "root");
  EXPECT_THAT(report["signatures"], IsEmpty());
  EXPECT_FALSE(CheckOk(report, "initial_root"));

  CliRun signed_root = Sign("root1", "root.json");
  ASSERT_EQ(signed_root.code, kExitOk) << signed_root.err;
  EXPECT_THAT(signed_root.err, IsEmpty());

  report = Json(Inspect("root.json"));
  EXPECT_EQ(report["root"]["version"], 1);
  EXPECT_EQ(report["root"]["expired"], false);
  const std::string root1_id = KeyFromSeed('1').PublicKey().KeyId();
  EXPECT_EQ(report["root"]["roles"]["root"]["keyids"], json::array({root1_id}));
  EXPECT_EQ(report["root"]["roles"]["release"]["keyids"],
            json::array({KeyFromSeed('r').PublicKey().KeyId()}));
  EXPECT_EQ(report["root"]["roles"]["server"]["threshold"], 1);
  ASSERT_EQ(report["signatures"].size(), 1u);
  EXPECT_EQ(report["signatures"][0]["keyid"], root1_id);
  EXPECT_EQ(report["signatures"][0]["valid"], true);
  EXPECT_EQ(report["signatures"][0]["roles"], json::array({"root v1"}));
  EXPECT_TRUE(CheckOk(report, "initial_root"));
  EXPECT_TRUE(CheckOk(report, "not_expired"));

  // What ringctl wrote is what the trust library accepts.
  EXPECT_TRUE(TrustInitialRoot(dir_.Read("root.json"), absl::Now()).ok());

  // The table names the roles and the signature.
  CliRun table = Ringctl({"keys", "inspect", File("root.json")});
  EXPECT_EQ(table.code, kExitOk);
  EXPECT_THAT(table.out, HasSubstr("root metadata v1"));
  EXPECT_THAT(table.out, HasSubstr(root1_id + "  root v1  valid"));
}

TEST_F(TrustCliTest, RotationIsVerifiedAgainstTheTrustedRoot) {
  MakeRoot1();
  // Root 2: two new root keys, both needed, and a new server key.
  ASSERT_EQ(Ringctl(CreateArgs(2, {"root2", "root3"}, 2, "server2", "root2.json")).code, kExitOk);
  ASSERT_EQ(Sign("root2", "root2.json").code, kExitOk);
  ASSERT_EQ(Sign("root3", "root2.json").code, kExitOk);

  // Signed by its own keys only: not a valid update of root 1.
  CliRun only_new = Inspect("root2.json", "root1.json");
  EXPECT_EQ(only_new.code, kExitRefused);
  EXPECT_THAT(only_new.err, HasSubstr("does not verify against --trusted-root"));
  EXPECT_FALSE(CheckOk(Json(only_new), "root_update"));
  EXPECT_TRUE(CheckOk(Json(only_new), "initial_root"));

  // The old root key holder signs too, checking against the root they trust.
  CliRun old_signs = Sign("root1", "root2.json", "root1.json");
  ASSERT_EQ(old_signs.code, kExitOk) << old_signs.err;
  EXPECT_THAT(old_signs.err, IsEmpty());

  CliRun rotated = Inspect("root2.json", "root1.json");
  ASSERT_EQ(rotated.code, kExitOk) << rotated.err;
  const json report = Json(rotated);
  EXPECT_TRUE(CheckOk(report, "root_update"));
  EXPECT_EQ(report["trusted_root"]["version"], 1);
  EXPECT_EQ(report["root"]["root_signatures"], 2);
  ASSERT_EQ(report["signatures"].size(), 3u);
  EXPECT_EQ(report["signatures"][2]["roles"], json::array({"root v1"}));
  EXPECT_EQ(report["signatures"][2]["valid"], true);

  // The trust library walks the same chain.
  absl::StatusOr<Root> root1 = TrustInitialRoot(dir_.Read("root1.json"), absl::Now());
  ASSERT_TRUE(root1.ok()) << root1.status();
  absl::StatusOr<Root> root2 = VerifyRootUpdate(*root1, dir_.Read("root2.json"));
  ASSERT_TRUE(root2.ok()) << root2.status();
  EXPECT_EQ(root2->server_keys.KeyIds(),
            std::vector<std::string>{KeyFromSeed('t').PublicKey().KeyId()});

  // A root checked against itself is fine; an older one against a newer is not.
  EXPECT_EQ(Inspect("root1.json", "root1.json").code, kExitOk);
  EXPECT_EQ(Inspect("root1.json", "root2.json").code, kExitRefused);
}

TEST_F(TrustCliTest, SignWarnsOrRefusesKeysThatWouldNotCount) {
  MakeRoot1();
  ASSERT_EQ(Ringctl(CreateArgs(2, {"root2"}, 1, "server2", "root2.json")).code, kExitOk);
  // An old root key without --trusted-root: signed, with a warning to check.
  CliRun old_key = Sign("root1", "root2.json");
  EXPECT_EQ(old_key.code, kExitOk) << old_key.err;
  EXPECT_THAT(old_key.err, HasSubstr("warning: key " + KeyFromSeed('1').PublicKey().KeyId() +
                                     " is not a root key of v2"));
  // A release key is a root key of neither version: refused.
  CliRun release = Sign("release", "root2.json", "root1.json");
  EXPECT_EQ(release.code, kExitRefused);
  EXPECT_THAT(release.err, HasSubstr("is a root key of neither v2 nor v1"));
  // A --trusted-root that root 2 does not follow is refused.
  CliRun wrong_previous = Sign("root2", "root2.json", "root2.json");
  EXPECT_EQ(wrong_previous.code, kExitRefused);
  EXPECT_THAT(wrong_previous.err, HasSubstr("root v2 follows v1"));
}

TEST_F(TrustCliTest, RefusesADuplicateSigner) {
  MakeRoot1();
  const std::string before = dir_.Read("root1.json");
  CliRun again = Sign("root1", "root1.json");
  EXPECT_EQ(again.code, kExitRefused);
  EXPECT_THAT(again.err, HasSubstr("ALREADY_EXISTS"));
  EXPECT_THAT(again.err, HasSubstr("already carries a signature by key"));
  EXPECT_EQ(dir_.Read("root1.json"), before);

  // The same key twice at creation, too.
  std::vector<std::string> args = CreateArgs(1, {"root1"}, 1, "server", "twice.json");
  args.insert(args.end(), {"--sign-with", Pem("root1"), "--sign-with", Pem("root1")});
  CliRun twice = Ringctl(args);
  EXPECT_EQ(twice.code, kExitUsage);
  EXPECT_THAT(twice.err, HasSubstr("hold the same key"));
}

TEST_F(TrustCliTest, RefusesATamperedPayload) {
  MakeRoot1();
  ASSERT_EQ(Ringctl(CreateArgs(2, {"root2"}, 1, "server2", "root2.json")).code, kExitOk);
  ASSERT_EQ(Sign("root2", "root2.json").code, kExitOk);
  // Someone swaps the payload for another root 2 (say, naming their own server
  // key) but keeps the signature.
  ASSERT_EQ(Ringctl(CreateArgs(2, {"root2"}, 1, "server", "evil.json")).code, kExitOk);
  absl::StatusOr<DsseEnvelope> signed_env = ParseEnvelopeJson(dir_.Read("root2.json"));
  absl::StatusOr<DsseEnvelope> evil = ParseEnvelopeForSigning(dir_.Read("evil.json"));
  ASSERT_TRUE(signed_env.ok() && evil.ok());
  evil->signatures = signed_env->signatures;
  dir_.Write("evil.json", EncodeEnvelopeJson(*evil));

  CliRun sign = Sign("root1", "evil.json", "root1.json");
  EXPECT_EQ(sign.code, kExitRefused);
  EXPECT_THAT(sign.err, HasSubstr("the payload was changed after it was signed"));

  CliRun inspect = Inspect("evil.json");
  EXPECT_EQ(inspect.code, kExitOk);  // nothing trusted was asked for
  const json report = Json(inspect);
  EXPECT_EQ(report["signatures"][0]["valid"], false);
  EXPECT_FALSE(CheckOk(report, "initial_root"));
  EXPECT_THAT(Ringctl({"keys", "inspect", File("evil.json")}).out, HasSubstr("INVALID"));
}

TEST_F(TrustCliTest, RefusesBadArgumentsWithExitOne) {
  ASSERT_TRUE(RunShell(
      absl::StrCat("cd '", dir_.path(),
                   "' && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem "
                   "2>/dev/null && openssl pkey -in rsa.pem -pubout -out rsa.pub")));
  struct Case {
    std::string name;
    std::vector<std::string> args;
    std::string says;
  };
  std::vector<std::string> rsa_root = CreateArgs(1, {"root1"}, 1, "server", "x.json");
  rsa_root[8] = File("rsa.pub");  // the --root-key value
  std::vector<std::string> rsa_private = CreateArgs(1, {"root1"}, 1, "server", "x.json");
  rsa_private[8] = File("rsa.pem");
  std::vector<std::string> missing = CreateArgs(1, {"root1"}, 1, "server", "x.json");
  missing[8] = File("nope.pem");
  std::vector<std::string> expired = CreateArgs(1, {"root1"}, 1, "server", "x.json");
  expired[6] = "2020-01-01";
  std::vector<std::string> version_zero = CreateArgs(0, {"root1"}, 1, "server", "x.json");
  std::vector<std::string> duplicate = CreateArgs(1, {"root1", "root1"}, 1, "server", "x.json");
  std::vector<std::string> server_is_root = CreateArgs(1, {"root1"}, 1, "root1", "x.json");
  std::vector<std::string> format_as_file = CreateArgs(1, {"root1"}, 1, "server", "x.json");
  format_as_file.back() = "json";
  std::vector<std::string> two_keys_no_threshold =
      CreateArgs(1, {"root1", "root2"}, 1, "server", "x.json");
  two_keys_no_threshold.erase(two_keys_no_threshold.begin() + 11,
                              two_keys_no_threshold.begin() + 13);
  const std::vector<Case> cases = {
      {"RSA public key", rsa_root, "public key is RSA, not Ed25519"},
      {"RSA private key", rsa_private, "private key is RSA, not Ed25519"},
      {"missing key file", missing, "cannot read"},
      {"threshold above key count", CreateArgs(1, {"root1"}, 2, "server", "x.json"),
       "--root-threshold 2 is more than the 1 --root-key keys"},
      {"threshold 0", CreateArgs(1, {"root1"}, 0, "server", "x.json"),
       "--root-threshold must be at least 1"},
      {"version 0", version_zero, "--version must be at least 1"},
      {"expiry in the past", expired, "is not in the future"},
      {"same key twice", duplicate, "hold the same key"},
      {"server key is a root key", server_is_root, "both a --server-key and a --root-key"},
      {"-o json", format_as_file, "for JSON output use --output json"},
      {"several keys, no threshold", two_keys_no_threshold,
       "--root-threshold is required when --root-key names 2 keys"},
      {"sign with a public key",
       {"keys", "root", "sign", "--key", Pub("root1"), File("x.json")},
       "not an unencrypted PEM private key"},
      {"sign a missing file",
       {"keys", "root", "sign", "--key", Pem("root1"), File("nope.json")},
       "cannot read"},
      {"inspect a missing file", {"keys", "inspect", File("nope.json")}, "cannot read"},
      {"floor below 1",
       {"floor", "sign", "--key", Pem("release"), "--channel", "rules.behavioral", "--version", "0",
        "-o", File("floor.json")},
       "minimum version must be >= 1"},
      {"floor with a bad channel",
       {"floor", "sign", "--key", Pem("release"), "--channel", "Bad Channel", "--version", "3",
        "-o", File("floor.json")},
       "channel"},
  };
  for (const Case& c : cases) {
    CliRun r = Ringctl(c.args);
    EXPECT_EQ(r.code, kExitUsage) << c.name << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.says)) << c.name;
    EXPECT_FALSE(std::ifstream(File("x.json")).good()) << c.name << " wrote a file";
  }
}

TEST_F(TrustCliTest, ExpiredRootIsReportedAndNotTrusted) {
  const Ed25519PrivateKey root_key = KeyFromSeed('1');
  absl::StatusOr<SignedRoot> old =
      CreateRoot(FirstRoot(root_key, absl::Now() - absl::Hours(48), absl::Hours(24)));
  ASSERT_TRUE(old.ok()) << old.status();
  dir_.Write("expired.json", old->envelope_json);

  CliRun inspect = Inspect("expired.json");
  EXPECT_EQ(inspect.code, kExitOk);
  const json report = Json(inspect);
  EXPECT_EQ(report["root"]["expired"], true);
  EXPECT_FALSE(CheckOk(report, "not_expired"));
  EXPECT_FALSE(CheckOk(report, "initial_root"));
  EXPECT_THAT(Ringctl({"keys", "inspect", File("expired.json")}).out, HasSubstr("(EXPIRED)"));

  // An expired root still verifies its successor (agents walk such chains), but
  // a successor that is itself expired does not pass.
  ASSERT_EQ(Ringctl(CreateArgs(2, {"root2"}, 1, "server", "next.json")).code, kExitOk);
  ASSERT_EQ(Sign("root2", "next.json").code, kExitOk);
  ASSERT_EQ(Sign("root1", "next.json", "expired.json").code, kExitOk);
  CliRun next = Inspect("next.json", "expired.json");
  EXPECT_EQ(next.code, kExitOk) << next.err;
  EXPECT_EQ(Json(next)["trusted_root"]["expired"], true);
  EXPECT_EQ(Inspect("expired.json", "expired.json").code, kExitRefused);
}

TEST_F(TrustCliTest, FloorSignInspect) {
  MakeRoot1();
  CliRun signed_floor = Ringctl({"floor", "sign", "--key", Pem("release"), "--channel",
                                 "rules.behavioral", "--version", "40", "-o", File("floor.json")});
  ASSERT_EQ(signed_floor.code, kExitOk) << signed_floor.err;
  EXPECT_THAT(signed_floor.out, HasSubstr("signed floor rules.behavioral >= v40"));

  // Without a root nothing can be checked, and the report says so.
  CliRun alone = Inspect("floor.json");
  ASSERT_EQ(alone.code, kExitOk) << alone.err;
  json report = Json(alone);
  EXPECT_EQ(report["kind"], "floor");
  EXPECT_EQ(report["floor"]["channel"], "rules.behavioral");
  EXPECT_EQ(report["floor"]["min_version"], 40);
  EXPECT_TRUE(report["signatures"][0]["valid"].is_null());
  EXPECT_THAT(report["checks"], IsEmpty());

  CliRun checked = Inspect("floor.json", "root1.json");
  ASSERT_EQ(checked.code, kExitOk) << checked.err;
  report = Json(checked);
  EXPECT_TRUE(CheckOk(report, "release_signed"));
  EXPECT_EQ(report["signatures"][0]["roles"], json::array({"release v1"}));

  // Signed with the server key instead: inspect against the root refuses it.
  ASSERT_EQ(Ringctl({"floor", "sign", "--key", Pem("server"), "--channel", "rules.behavioral",
                     "--version", "40", "-o", File("bad-floor.json")})
                .code,
            kExitOk);
  CliRun bad = Inspect("bad-floor.json", "root1.json");
  EXPECT_EQ(bad.code, kExitRefused);
  EXPECT_FALSE(CheckOk(Json(bad), "release_signed"));
  EXPECT_EQ(Json(bad)["signatures"][0]["roles"], json::array({"server v1"}));
  EXPECT_EQ(Json(bad)["signatures"][0]["valid"], true);  // a valid signature, wrong role

  // Content envelopes are inspected the same way.
  dir_.Write("rules.bin", "rules\n");
  ASSERT_EQ(Ringctl({"content", "sign", "--key", Pem("release"), "--channel", "rules.behavioral",
                     "--version", "42", File("rules.bin")})
                .code,
            kExitOk);
  CliRun content = Inspect("rules.bin.dsse.json", "root1.json");
  ASSERT_EQ(content.code, kExitOk) << content.err;
  EXPECT_EQ(Json(content)["content"]["version"], 42);
  EXPECT_TRUE(CheckOk(Json(content), "release_signed"));
}

TEST_F(TrustCliTest, SeveralServerKeysNeedNoThreshold) {
  // As during a server key rollover: both keys named, either one signs.
  CliRun r = Ringctl({"keys", "root", "create", "--version", "1", "--expires", "365d", "--root-key",
                      Pub("root1"), "--release-key", Pub("release"), "--server-key", Pub("server"),
                      "--server-key", Pub("server2"), "--sign-with", Pem("root1"), "-o",
                      File("root.json")});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const json report = Json(Inspect("root.json"));
  EXPECT_EQ(report["root"]["roles"]["server"]["threshold"], 1);
  EXPECT_EQ(report["root"]["roles"]["server"]["keyids"].size(), 2u);
}

TEST_F(TrustCliTest, WriteVerbsTakeMinusOAsTheFileAndLongOutputAsTheFormat) {
  std::vector<std::string> args = CreateArgs(1, {"root1"}, 1, "server", "root.json");
  args.insert(args.end(), {"--output", "json"});
  CliRun r = Ringctl(args);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const json doc = Json(r);
  EXPECT_EQ(doc["envelope"], File("root.json"));
  EXPECT_EQ(doc["kind"], "root");
  EXPECT_EQ(doc["version"], 1);
  EXPECT_THAT(doc["key_ids"], IsEmpty());

  CliRun sign = Ringctl({"-o", "json", "keys", "root", "sign", "--key", Pem("root1"),
                         File("root.json"), "-o", File("signed.json")});
  ASSERT_EQ(sign.code, kExitOk) << sign.err;
  EXPECT_EQ(Json(sign)["key_ids"], json::array({KeyFromSeed('1').PublicKey().KeyId()}));
  EXPECT_TRUE(TrustInitialRoot(dir_.Read("signed.json"), absl::Now()).ok());
  // -o wrote elsewhere; the input is unchanged.
  EXPECT_EQ(ParseEnvelopeForSigning(dir_.Read("root.json"))->signatures.size(), 0u);
}

// --- Interoperability with stock OpenSSL tooling ---

// SignWithOpenssl signs PAE(type, payload of `envelope_file`) with stock tools:
// the payload is base64-decoded, the PAE is built with printf, the signature
// made by `openssl pkeyutl -sign -rawin`, and the envelope assembled by printf
// into `out_file`. Also writes pae.bin and keyid.txt.
std::string OpensslSignScript(const std::string& dir, absl::string_view type,
                              const std::string& envelope_file, const std::string& key_pem,
                              const std::string& out_file) {
  return absl::StrCat(
      "set -e; cd '", dir, "'; TYPE='", type, "'\n",
      "sed -n 's/.*\"payload\":\"\\([^\"]*\\)\".*/\\1/p' '", envelope_file,
      "' | base64 -d > payload.bin\n",
      "{ printf 'DSSEv1 %s %s %s ' \"${#TYPE}\" \"$TYPE\" \"$(wc -c < payload.bin | tr -d ' ')\"; "
      "cat payload.bin; } > pae.bin\n",
      "openssl pkeyutl -sign -rawin -inkey '", key_pem, "' -in pae.bin -out sig.bin\n",
      "openssl pkey -in '", key_pem,
      "' -pubout -outform DER | tail -c 32 | sha256sum | cut -d' ' -f1 | tr -d '\\n' > "
      "keyid.txt\n",
      "printf '{\"payloadType\": \"%s\", \"payload\": \"%s\", \"signatures\": "
      "[{\"keyid\": \"%s\", \"sig\": \"%s\"}]}' \"$TYPE\" \"$(base64 -w0 payload.bin)\" "
      "\"$(cat keyid.txt)\" \"$(base64 -w0 sig.bin)\" > '",
      out_file, "'\n");
}

TEST_F(TrustCliTest, RootSignedWithOpensslOverThePaeVerifies) {
  // Keys made by openssl, root built by ringctl, signature made by openssl.
  ASSERT_TRUE(RunShell(absl::StrCat(
      "set -e; cd '", dir_.path(), "'\n", "openssl genpkey -algorithm ed25519 -out ossl-root.pem\n",
      "openssl pkey -in ossl-root.pem -pubout -out ossl-root.pub\n")));
  CliRun created = Ringctl({"keys", "root", "create", "--version", "1", "--expires", "30d",
                            "--root-key", File("ossl-root.pub"), "--release-key", Pub("release"),
                            "--server-key", Pub("server"), "-o", File("root.json")});
  ASSERT_EQ(created.code, kExitOk) << created.err;
  const std::string script = OpensslSignScript(dir_.path(), kRootPayloadType, "root.json",
                                               "ossl-root.pem", "openssl-root.json");
  ASSERT_TRUE(RunShell(script)) << script;

  absl::StatusOr<DsseEnvelope> ours = ParseEnvelopeForSigning(dir_.Read("root.json"));
  ASSERT_TRUE(ours.ok()) << ours.status();
  EXPECT_EQ(dir_.Read("pae.bin"), PreAuthEncoding(kRootPayloadType, ours->payload));

  CliRun inspect = Inspect("openssl-root.json");
  ASSERT_EQ(inspect.code, kExitOk) << inspect.err;
  const json report = Json(inspect);
  EXPECT_EQ(report["signatures"][0]["keyid"], dir_.Read("keyid.txt"));
  EXPECT_EQ(report["signatures"][0]["valid"], true);
  EXPECT_TRUE(CheckOk(report, "initial_root"));

  // The other direction: ringctl signs the same root with the openssl key, and
  // openssl verifies that signature over the PAE bytes.
  CliRun sign =
      Ringctl({"keys", "root", "sign", "--key", File("ossl-root.pem"), File("root.json")});
  ASSERT_EQ(sign.code, kExitOk) << sign.err;
  absl::StatusOr<DsseEnvelope> signed_env = ParseEnvelopeJson(dir_.Read("root.json"));
  ASSERT_TRUE(signed_env.ok()) << signed_env.status();
  dir_.Write("our_sig.bin", signed_env->signatures[0].sig);
  EXPECT_TRUE(RunShell(absl::StrCat("cd '", dir_.path(),
                                    "' && openssl pkeyutl -verify -rawin -pubin -inkey "
                                    "ossl-root.pub -in pae.bin -sigfile our_sig.bin >/dev/null")));
}

TEST_F(TrustCliTest, FloorSignedWithOpensslOverThePaeVerifies) {
  MakeRoot1();
  ASSERT_EQ(Ringctl({"floor", "sign", "--key", Pem("release"), "--channel", "rules.behavioral",
                     "--version", "7", "-o", File("floor.json")})
                .code,
            kExitOk);
  const std::string script = OpensslSignScript(dir_.path(), kFloorPayloadType, "floor.json",
                                               Pem("release"), "openssl-floor.json");
  ASSERT_TRUE(RunShell(script)) << script;
  CliRun inspect = Inspect("openssl-floor.json", "root1.json");
  ASSERT_EQ(inspect.code, kExitOk) << inspect.err;
  EXPECT_TRUE(CheckOk(Json(inspect), "release_signed"));
  // Ed25519 is deterministic: openssl made exactly ringctl's signature.
  EXPECT_EQ(ParseEnvelopeJson(dir_.Read("openssl-floor.json"))->signatures[0].sig,
            ParseEnvelopeJson(dir_.Read("floor.json"))->signatures[0].sig);
}

// --- The inspect report, pinned ---

// FixedRoots builds root 1 (key '1') and root 2 (keys '2' and '3', threshold
// 2, server key 't') signed by '1', '2' and '3', at fixed times.
std::pair<std::string, std::string> FixedRoots() {
  const Ed25519PrivateKey k1 = KeyFromSeed('1'), k2 = KeyFromSeed('2'), k3 = KeyFromSeed('3');
  RootRequest request = FirstRoot(k1, kFixedNow, absl::Hours(24 * 365));
  absl::StatusOr<SignedRoot> root1 = CreateRoot(request);
  EXPECT_TRUE(root1.ok()) << root1.status();
  request.version = 2;
  request.root = {{k2.PublicKey(), k3.PublicKey()}, 2};
  request.server.keys = {KeyFromSeed('t').PublicKey()};
  request.signers = {&k2, &k3};
  absl::StatusOr<SignedRoot> root2 = CreateRoot(request);
  EXPECT_TRUE(root2.ok()) << root2.status();
  RootSpec previous = root1->root;
  absl::StatusOr<SignedRoot> cosigned = AddRootSignature(root2->envelope_json, k1, &previous);
  EXPECT_TRUE(cosigned.ok()) << cosigned.status();
  return {root1->envelope_json, cosigned->envelope_json};
}

void ExpectInspectGolden(const std::string& name, const InspectRequest& request) {
  absl::StatusOr<Inspection> inspection = InspectEnvelope(request);
  ASSERT_TRUE(inspection.ok()) << inspection.status();
  EXPECT_TRUE(inspection->verdict.ok()) << inspection->verdict;
  std::ostringstream table, json_out;
  RenderInspection(inspection->report, OutputFormat::kTable, table);
  RenderInspection(inspection->report, OutputFormat::kJson, json_out);
  ExpectGolden(name + ".txt", table.str());
  ExpectGolden(name + ".json", json_out.str());
  EXPECT_EQ(json_out.str().find('\n'), json_out.str().size() - 1);
}

// A payload written into a reused buffer, through the message kept per thread, is the
// statement of its own Assignment alone: nothing of a larger statement before it remains.
TEST(AssignmentPayloadTest, ReusedBuffersCarryNothingOfTheStatementBefore) {
  auto statement = [](int channels, bool revoked, bool stop) {
    Assignment a;
    a.agent_id = absl::StrCat("agent-with-a-longer-id-", channels);
    a.ring = channels % 2 ? "canary" : "broad";
    a.emergency_stop = stop;
    a.root_version = channels + 1;
    for (int i = 0; i < channels; ++i) {
      AssignedChannel c;
      c.channel = absl::StrCat("rules.channel-", i);
      c.version = 10 + i;
      c.manifest_sha256 = std::string(64, static_cast<char>('a' + i));
      c.size = 1000 * (i + 1);
      c.rollback = i == 1;
      if (revoked) c.revoked_versions = {1, 2, 3 + i};
      a.channels.push_back(c);
    }
    return a;
  };
  // The payload as a fresh message serializes it.
  auto fresh = [](const Assignment& a, int64_t sequence, absl::Time issued, absl::Time expires) {
    ::ringwarden::v1::AssignmentStatement m;
    m.set_agent_id(a.agent_id);
    m.set_ring(a.ring);
    m.set_sequence(sequence);
    m.set_issued_unix_ms(absl::ToUnixMillis(issued));
    m.set_expires_unix_ms(absl::ToUnixMillis(expires));
    for (const AssignedChannel& c : a.channels) {
      ::ringwarden::v1::AssignedChannel* out = m.add_channels();
      out->set_channel(c.channel);
      out->set_version(c.version);
      out->set_manifest_sha256(c.manifest_sha256);
      out->set_size(c.size);
      for (int64_t v : c.revoked_versions) out->add_revoked_versions(v);
      out->set_rollback(c.rollback);
    }
    m.set_emergency_stop(a.emergency_stop);
    m.set_root_version(a.root_version);
    return m.SerializeAsString();
  };
  const absl::Time issued = absl::FromUnixSeconds(1'800'000'000);
  std::string buffer = "left over from before";
  int64_t sequence = 1;
  for (const auto& [channels, revoked, stop] :
       std::vector<std::tuple<int, bool, bool>>{{3, true, true},
                                                {1, false, false},
                                                {0, false, true},
                                                {2, true, false},
                                                {3, false, false}}) {
    const Assignment a = statement(channels, revoked, stop);
    AssignmentPayloadInto(a, sequence, issued, issued + absl::Hours(1), buffer);
    EXPECT_EQ(buffer, fresh(a, sequence, issued, issued + absl::Hours(1))) << channels;
    ++sequence;
  }
}

TEST(InspectGoldenTest, RootRotation) {
  const auto [root1, root2] = FixedRoots();
  ExpectInspectGolden("keys_inspect_root",
                      {"root-v2.json", root2, "root-v1.json", root1, kFixedNow});
}

TEST(InspectGoldenTest, Floor) {
  const auto [root1, root2] = FixedRoots();
  const Ed25519PrivateKey release = KeyFromSeed('r');
  absl::StatusOr<std::string> floor = SignFloor({{&release}, "rules.behavioral", 40, kFixedNow});
  ASSERT_TRUE(floor.ok()) << floor.status();
  ExpectInspectGolden("keys_inspect_floor",
                      {"floor.json", *floor, "root-v2.json", root2, kFixedNow});
}

TEST(InspectGoldenTest, AssignmentWithoutATrustedRoot) {
  Assignment a;
  a.agent_id = "agent-0001";
  a.ring = "canary";
  a.sequence = 7;
  a.issued = kFixedNow;
  a.expires = kFixedNow + absl::Hours(6);
  a.root_version = 2;
  a.channels.push_back({"rules.behavioral", 42, std::string(64, 'a'), 1048576, {39}, false});
  absl::StatusOr<std::string> signed_assignment = SignAssignment(a, KeyFromSeed('t'));
  ASSERT_TRUE(signed_assignment.ok()) << signed_assignment.status();
  ExpectInspectGolden("keys_inspect_assignment",
                      {"assignment.json", *signed_assignment, "", "", kFixedNow});
}

TEST(InspectGoldenTest, RefusesWhatIsNotOurs) {
  DsseEnvelope other{"application/vnd.in-toto+json", "{}", {{"", std::string(64, 'x')}}};
  absl::StatusOr<Inspection> inspection =
      InspectEnvelope({"other.json", EncodeEnvelopeJson(other), "", "", kFixedNow});
  EXPECT_EQ(inspection.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(inspection.status().message(), HasSubstr("not a ringwarden envelope"));
  EXPECT_FALSE(InspectEnvelope({"junk.json", "{not json", "", "", kFixedNow}).ok());
}

// --- Uploads and the list against the fake AdminService ---

class TrustUploadTest : public TrustCliTest {
 protected:
  std::vector<std::string> With(const std::vector<std::string>& args) const {
    return server_.With(args);
  }
  FakeAdminServer server_;
};

TEST_F(TrustUploadTest, UploadsRootsAndFloorsAndListsThem) {
  MakeRoot1();
  CliRun root1 = Ringctl(With({"keys", "root", "upload", File("root1.json"), "--reason", "init"}));
  ASSERT_EQ(root1.code, kExitOk) << root1.err;
  EXPECT_THAT(root1.out, HasSubstr("uploaded root v1"));

  ASSERT_EQ(Ringctl(CreateArgs(2, {"root2"}, 1, "server2", "root2.json")).code, kExitOk);
  ASSERT_EQ(Sign("root2", "root2.json").code, kExitOk);
  ASSERT_EQ(Sign("root1", "root2.json", "root1.json").code, kExitOk);
  CliRun root2 = Ringctl(
      With({"keys", "root", "upload", File("root2.json"), "--reason", "rotate", "-o", "json"}));
  ASSERT_EQ(root2.code, kExitOk) << root2.err;
  EXPECT_EQ(Json(root2)["version"], 2);
  EXPECT_EQ(Json(root2)["kind"], "root");

  ASSERT_EQ(Ringctl({"floor", "sign", "--key", Pem("release"), "--channel", "rules.behavioral",
                     "--version", "40", "-o", File("floor.json")})
                .code,
            kExitOk);
  CliRun floor = Ringctl(With({"floor", "upload", File("floor.json"), "--reason", "v39 crashes"}));
  ASSERT_EQ(floor.code, kExitOk) << floor.err;
  EXPECT_THAT(floor.out, HasSubstr("uploaded floor rules.behavioral >= v40"));

  const auto uploads = server_.service().trust_uploads();
  ASSERT_EQ(uploads.size(), 3u);
  EXPECT_EQ(uploads[0].reason(), "init");
  EXPECT_EQ(uploads[0].envelope(), dir_.Read("root1.json"));  // the bytes as signed
  EXPECT_EQ(uploads[2].reason(), "v39 crashes");

  CliRun list = Ringctl(With({"trust", "list", "-o", "json"}));
  ASSERT_EQ(list.code, kExitOk) << list.err;
  const json doc = Json(list);
  ASSERT_EQ(doc["roots"].size(), 2u);
  EXPECT_EQ(doc["roots"][1]["version"], 2);
  EXPECT_EQ(doc["roots"][1]["envelope"], dir_.Read("root2.json"));
  ASSERT_EQ(doc["floors"].size(), 1u);
  EXPECT_EQ(doc["floors"][0]["channel"], "rules.behavioral");
  EXPECT_EQ(doc["floors"][0]["version"], 40);

  CliRun table = Ringctl(With({"trust", "list"}));
  EXPECT_EQ(table.code, kExitOk);
  EXPECT_THAT(table.out, HasSubstr("rules.behavioral  40"));
}

TEST_F(TrustUploadTest, ServerRefusalsExitTwoAndLocalMistakesExitOne) {
  MakeRoot1();
  ASSERT_EQ(Ringctl(With({"keys", "root", "upload", File("root1.json"), "--reason", "init"})).code,
            kExitOk);
  // Root 2 signed only by its own new key: the server refuses it.
  ASSERT_EQ(Ringctl(CreateArgs(2, {"root2"}, 1, "server2", "root2.json")).code, kExitOk);
  ASSERT_EQ(Sign("root2", "root2.json").code, kExitOk);
  CliRun refused =
      Ringctl(With({"keys", "root", "upload", File("root2.json"), "--reason", "rotate"}));
  EXPECT_EQ(refused.code, kExitRefused);
  EXPECT_THAT(refused.err, HasSubstr("PERMISSION_DENIED"));

  // A floor is not a root; an unsigned root is not uploaded; both stay local.
  ASSERT_EQ(Ringctl({"floor", "sign", "--key", Pem("release"), "--channel", "rules.behavioral",
                     "--version", "4", "-o", File("floor.json")})
                .code,
            kExitOk);
  CliRun wrong_kind =
      Ringctl(With({"keys", "root", "upload", File("floor.json"), "--reason", "oops"}));
  EXPECT_EQ(wrong_kind.code, kExitUsage);
  EXPECT_THAT(wrong_kind.err, HasSubstr("is a floor, not a root"));
  ASSERT_EQ(Ringctl(CreateArgs(2, {"root2"}, 1, "server2", "unsigned.json")).code, kExitOk);
  CliRun unsigned_root =
      Ringctl(With({"keys", "root", "upload", File("unsigned.json"), "--reason", "x"}));
  EXPECT_EQ(unsigned_root.code, kExitUsage);
  EXPECT_THAT(unsigned_root.err, HasSubstr("has no signatures yet"));
  CliRun root_as_floor = Ringctl(With({"floor", "upload", File("root1.json"), "--reason", "x"}));
  EXPECT_EQ(root_as_floor.code, kExitUsage);
  EXPECT_EQ(Ringctl(With({"floor", "upload", File("floor.json")})).code, kExitUsage);  // reason
  EXPECT_EQ(server_.service().calls("UploadRoot"), 2);
  EXPECT_EQ(server_.service().calls("UploadFloor"), 0);

  // A floor signed by a key the root does not name as release key: refused.
  ASSERT_EQ(Ringctl({"floor", "sign", "--key", Pem("server"), "--channel", "rules.behavioral",
                     "--version", "4", "-o", File("bad-floor.json")})
                .code,
            kExitOk);
  EXPECT_EQ(Ringctl(With({"floor", "upload", File("bad-floor.json"), "--reason", "x"})).code,
            kExitRefused);

  // No server at all.
  EXPECT_EQ(Ringctl({"--server", "127.0.0.1:1", "--timeout", "0.5", "trust", "list"}).code,
            kExitUnavailable);
}

}  // namespace
}  // namespace ringwarden::cli_testing

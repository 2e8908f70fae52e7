#include "server/trust_keeper.h"

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/dsse.h"
#include "common/names.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "server/core/rollout_manager.h"

namespace ringwarden {
namespace {

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_sec, t, absl::UTCTimeZone());
}

absl::Status CheckUpload(const std::string& envelope_json, const std::string& reason,
                         absl::string_view what) {
  if (envelope_json.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("the ", what, " envelope is empty"));
  }
  if (envelope_json.size() > kMaxEnvelopeJsonBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the ", what, " envelope is ",
                                                   envelope_json.size(), " bytes; the limit is ",
                                                   kMaxEnvelopeJsonBytes));
  }
  if (reason.size() > kMaxReasonBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("reason is longer than ", kMaxReasonBytes, " bytes"));
  }
  return absl::OkStatus();
}

// SignerKeyIds returns the distinct keys of `roles` whose signatures on the
// (already verified) envelope are valid, for the record and the audit entry.
std::vector<std::string> SignerKeyIds(absl::string_view envelope_json,
                                      absl::string_view payload_type,
                                      std::initializer_list<const TrustedKeys*> roles) {
  std::set<std::string> ids;
  absl::StatusOr<DsseEnvelope> envelope = ParseEnvelopeJson(envelope_json);
  if (envelope.ok()) {
    for (const TrustedKeys* role : roles) {
      absl::StatusOr<VerifiedEnvelope> verified = role->Verify(*envelope, payload_type);
      if (verified.ok()) {
        ids.insert(verified->key_ids.begin(), verified->key_ids.end());
      }
    }
  }
  return std::vector<std::string>(ids.begin(), ids.end());
}

RootRecord RecordOf(const Root& root, std::vector<std::string> key_ids, const Principal& actor) {
  RootRecord record;
  record.version = root.version;
  record.envelope_json = root.envelope_json;
  record.expires = root.expires;
  record.key_ids = std::move(key_ids);
  record.uploaded_by = actor.name;
  return record;
}

AuditRecord RootAudit(const Root& root, const RootRecord& record, const Principal& actor,
                      const std::string& reason) {
  AuditRecord audit;
  audit.actor = actor.name;
  audit.action = "trust.root_upload";
  audit.reason = reason;
  audit.evidence_json = nlohmann::json{{"version", root.version},
                                       {"expires", Rfc3339(root.expires)},
                                       {"payload_sha256", root.payload_sha256},
                                       {"key_ids", record.key_ids},
                                       {"root_key_ids", root.root_keys.KeyIds()},
                                       {"release_key_ids", root.release_keys.KeyIds()},
                                       {"server_key_ids", root.server_keys.KeyIds()}}
                            .dump();
  return audit;
}

}  // namespace

absl::StatusOr<Root> FollowStoredRoots(const Root& trusted, const std::vector<RootRecord>& stored) {
  Root current = trusted;
  for (const RootRecord& record : stored) {
    if (record.version < current.version) {
      continue;
    }
    if (record.version == current.version) {
      // The same root may be stored with other JSON spacing: compare what was signed.
      absl::StatusOr<DsseEnvelope> envelope = ParseEnvelopeJson(record.envelope_json);
      if (!envelope.ok() || Sha256Hex(envelope->payload) != current.payload_sha256) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the stored root version ", record.version,
            " differs from the trusted one; the database's roots do not chain from --root"));
      }
      continue;
    }
    if (record.version != current.version + 1) {
      return absl::FailedPreconditionError(absl::StrCat("the stored roots skip from version ",
                                                        current.version, " to ", record.version,
                                                        "; they do not chain from --root"));
    }
    absl::StatusOr<Root> next = VerifyRootUpdate(current, record.envelope_json);
    if (!next.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the stored root version ", record.version,
                       " does not verify: ", next.status().message()));
    }
    current = *std::move(next);
  }
  return current;
}

TrustKeeper::TrustKeeper(TrustStore& store, SnapshotHolder& snapshots, Ed25519PublicKey server_key,
                         const Clock& clock)
    : store_(store), snapshots_(snapshots), server_key_(std::move(server_key)), clock_(clock) {}

absl::Status TrustKeeper::Open(absl::string_view pinned_root_json) {
  absl::StatusOr<Root> pinned = TrustInitialRoot(pinned_root_json, clock_.Now());
  if (!pinned.ok()) {
    return absl::Status(pinned.status().code(),
                        absl::StrCat("--root: ", pinned.status().message()));
  }
  ASSIGN_OR_RETURN(std::vector<RootRecord> stored, store_.ListRoots());
  if (stored.empty()) {
    const Principal server{kServerActor, Role::kAdmin};
    const RootRecord record = RecordOf(
        *pinned, SignerKeyIds(pinned->envelope_json, kRootPayloadType, {&pinned->root_keys}),
        server);
    absl::Status inserted =
        store_.InsertRoot(record, RootAudit(*pinned, record, server, "pinned root (--root)"));
    if (!absl::IsFailedPrecondition(inserted)) {
      RETURN_IF_ERROR(inserted);
    }
    // FAILED_PRECONDITION: another replica stored a root first; follow it.
    ASSIGN_OR_RETURN(stored, store_.ListRoots());
  }
  if (stored.back().version < pinned->version) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--root is version ", pinned->version, " but the newest stored root is version ",
        stored.back().version, "; start with --root at a version the database holds (",
        stored.front().version, "..", stored.back().version,
        ") and upload the newer roots with ringctl"));
  }
  ASSIGN_OR_RETURN(Root newest, FollowStoredRoots(*pinned, stored));
  if (newest.expires <= clock_.Now()) {
    std::cerr << "WARNING: the newest root of trust (version " << newest.version << ") expired at "
              << Rfc3339(newest.expires)
              << "; agents refuse every answer until the release team uploads a new root"
              << std::endl;
  }
  Adopt(std::move(newest));
  return absl::OkStatus();
}

absl::StatusOr<Root> TrustKeeper::NewestStoredRoot() {
  ASSIGN_OR_RETURN(std::vector<RootRecord> stored, store_.ListRoots());
  ASSIGN_OR_RETURN(Root newest, FollowStoredRoots(Current(), stored));
  if (newest.version != RootVersion()) {
    Adopt(newest);
  }
  return newest;
}

bool TrustKeeper::IsStoredAsIs(int64_t version, absl::string_view envelope_json) {
  absl::StatusOr<std::vector<RootRecord>> stored = store_.ListRoots();
  absl::StatusOr<DsseEnvelope> offered = ParseEnvelopeJson(envelope_json);
  if (!stored.ok() || !offered.ok()) {
    return false;
  }
  for (const RootRecord& record : *stored) {
    absl::StatusOr<DsseEnvelope> envelope = ParseEnvelopeJson(record.envelope_json);
    if (record.version == version && envelope.ok() && envelope->payload == offered->payload) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<RootRecord> TrustKeeper::UploadRoot(const std::string& envelope_json,
                                                   const std::string& reason,
                                                   const Principal& actor) {
  RETURN_IF_ERROR(CheckUpload(envelope_json, reason, "root"));
  // The unverified version only chooses the message; VerifyRootUpdate decides.
  ASSIGN_OR_RETURN(RootSpec offered, DecodeRootUnverified(envelope_json));
  ASSIGN_OR_RETURN(Root newest, NewestStoredRoot());
  if (offered.version <= newest.version) {
    return absl::FailedPreconditionError(
        absl::StrCat("root version ", offered.version,
                     " is not newer than the stored root version ", newest.version,
                     IsStoredAsIs(offered.version, envelope_json)
                         ? " and is stored already (the server stores --root itself at start)"
                         : "",
                     "; a rotation uploads version ", newest.version + 1));
  }
  if (offered.version != newest.version + 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "root version ", offered.version, " skips versions: the newest stored root is version ",
        newest.version, "; upload version ", newest.version + 1, " first"));
  }
  ASSIGN_OR_RETURN(Root next, VerifyRootUpdate(newest, envelope_json));
  if (next.expires <= clock_.Now()) {
    return absl::FailedPreconditionError(
        absl::StrCat("root version ", next.version, " expired at ", Rfc3339(next.expires),
                     "; agents would refuse it. Sign it with a later expiry"));
  }
  const RootRecord record = RecordOf(
      next, SignerKeyIds(envelope_json, kRootPayloadType, {&newest.root_keys, &next.root_keys}),
      actor);
  RETURN_IF_ERROR(store_.InsertRoot(record, RootAudit(next, record, actor, reason)));
  Adopt(std::move(next));
  RefreshSnapshot();
  return record;
}

absl::StatusOr<FloorRecord> TrustKeeper::UploadFloor(const std::string& envelope_json,
                                                     const std::string& reason,
                                                     const Principal& actor,
                                                     const FloorCheck& check) {
  RETURN_IF_ERROR(CheckUpload(envelope_json, reason, "floor"));
  ASSIGN_OR_RETURN(Root root, NewestStoredRoot());
  ASSIGN_OR_RETURN(Floor floor, VerifyFloor(root, envelope_json));
  RETURN_IF_ERROR(ValidateChannelName(floor.channel));
  ASSIGN_OR_RETURN(std::optional<FloorRecord> stored, store_.GetFloor(floor.channel));
  if (stored.has_value() && floor.min_version < stored->min_version) {
    return absl::FailedPreconditionError(
        absl::StrCat(floor.channel, " already has floor v", stored->min_version,
                     "; a floor only rises, v", floor.min_version, " is below it"));
  }
  FloorRecord record;
  record.channel = floor.channel;
  record.min_version = floor.min_version;
  record.envelope_json = envelope_json;
  record.key_ids = SignerKeyIds(envelope_json, kFloorPayloadType, {&root.release_keys});
  record.uploaded_by = actor.name;
  AuditRecord audit;
  audit.actor = actor.name;
  audit.action = "trust.floor_upload";
  audit.reason = reason;
  audit.evidence_json = nlohmann::json{
      {"channel", record.channel},
      {"min_version", record.min_version},
      {"previous_min_version", stored.has_value() ? stored->min_version : 0},
      {"key_ids", record.key_ids},
      {"root_version",
       root.version}}.dump();
  if (check) {
    RETURN_IF_ERROR(check(record, audit));
  }
  RETURN_IF_ERROR(store_.UpsertFloor(record, audit));
  RefreshSnapshot();
  return record;
}

absl::Status TrustKeeper::Sync(const AssignmentSnapshot& snapshot) {
  if (snapshot.roots().empty() || snapshot.roots().back().version <= RootVersion()) {
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(Root newest, FollowStoredRoots(Current(), snapshot.roots()));
  if (newest.version > RootVersion()) {
    Adopt(std::move(newest));
  }
  return absl::OkStatus();
}

Root TrustKeeper::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

TrustedKeys TrustKeeper::ReleaseKeys() const {
  absl::MutexLock lock(&mu_);
  return current_.release_keys;
}

void TrustKeeper::Adopt(Root root) {
  const std::vector<std::string> server_ids = root.server_keys.KeyIds();
  const bool trusted =
      std::find(server_ids.begin(), server_ids.end(), server_key_.KeyId()) != server_ids.end();
  const int64_t version = root.version;
  const absl::Time expires = root.expires;
  {
    absl::MutexLock lock(&mu_);
    if (root.version < current_.version) {
      return;  // a concurrent call adopted a newer one
    }
    current_ = std::move(root);
    root_version_.store(version, std::memory_order_release);
    server_key_trusted_.store(trusted, std::memory_order_release);
  }
  std::cerr << "trusting root version " << version << " (expires " << Rfc3339(expires) << ")"
            << std::endl;
  if (!trusted) {
    std::cerr << "WARNING: --server-key (key id " << server_key_.KeyId()
              << ") is not in the server role of root version " << version
              << "; agents will refuse every answer of this server until a root rotation "
                 "names it (ringwarden_server_key_trusted is 0)"
              << std::endl;
  }
}

void TrustKeeper::RefreshSnapshot() {
  absl::Status status = snapshots_.Refresh();
  if (!status.ok()) {
    // The upload is committed; the periodic refresh will pick it up.
    std::cerr << "snapshot refresh after a trust upload failed: " << status << std::endl;
  }
}

}  // namespace ringwarden

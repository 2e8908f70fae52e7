// trust_fixture.h: keys, roots and floors signed the way release engineers
// sign them offline, for the transport's trust tests.
//
// TrustKeys holds fresh Ed25519 keys for each role; SignRoot and SignFloor sign
// root and floor envelopes with any set of keys (right or wrong), so tests can
// offer the server valid and hostile metadata. TrustFixture adds a FakeStore
// with FakeClock and a SnapshotHolder. One fixture per test; not thread-safe.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/clock.h"
#include "common/dsse.h"
#include "common/ed25519.h"
#include "common/sha256.h"
#include "common/trust/trust.h"
#include "ringwarden/v1/content.pb.h"
#include "server/core/snapshot.h"
#include "tests/support/fake_store.h"

namespace ringwarden::testing {

// RootPlan names the keys of each role of one root version.
struct RootPlan {
  int64_t version = 1;
  std::vector<const Ed25519PrivateKey*> root_keys;
  const Ed25519PrivateKey* release = nullptr;
  const Ed25519PrivateKey* server = nullptr;
  absl::Time expires;
};

inline Ed25519PrivateKey NewKey() {
  absl::StatusOr<Ed25519PrivateKey> key = Ed25519PrivateKey::Generate();
  EXPECT_TRUE(key.ok()) << key.status();
  return *std::move(key);
}

// SignedJson signs `payload` as `payload_type` with `signers` (DSSE JSON).
inline std::string SignedJson(absl::string_view payload_type, const std::string& payload,
                              const std::vector<const Ed25519PrivateKey*>& signers) {
  absl::StatusOr<DsseEnvelope> envelope = SignEnvelope(payload_type, payload, signers);
  EXPECT_TRUE(envelope.ok()) << envelope.status();
  return envelope.ok() ? EncodeEnvelopeJson(*envelope) : "";
}

// SignRoot encodes `plan` as root metadata and signs it with `signers`.
inline std::string SignRoot(const RootPlan& plan,
                            const std::vector<const Ed25519PrivateKey*>& signers) {
  RootSpec spec;
  spec.version = plan.version;
  spec.expires = plan.expires;
  auto add_key = [&spec](const Ed25519PrivateKey& key) {
    for (const Ed25519PublicKey& known : spec.keys) {
      if (known.KeyId() == key.PublicKey().KeyId()) {
        return;
      }
    }
    spec.keys.push_back(key.PublicKey());
  };
  for (const Ed25519PrivateKey* key : plan.root_keys) {
    add_key(*key);
    spec.root.keyids.push_back(key->PublicKey().KeyId());
  }
  add_key(*plan.release);
  add_key(*plan.server);
  spec.release.keyids = {plan.release->PublicKey().KeyId()};
  spec.server.keyids = {plan.server->PublicKey().KeyId()};
  absl::StatusOr<std::string> payload = EncodeRoot(spec);
  EXPECT_TRUE(payload.ok()) << payload.status();
  return SignedJson(kRootPayloadType, payload.ok() ? *payload : "", signers);
}

// SignFloor signs a floor of `channel` at `min_version` with `signer`.
inline std::string SignFloor(const std::string& channel, int64_t min_version,
                             const Ed25519PrivateKey& signer) {
  absl::StatusOr<std::string> payload =
      EncodeFloor(channel, min_version, absl::FromUnixSeconds(1'700'000'000));
  EXPECT_TRUE(payload.ok()) << payload.status();
  return SignedJson(kFloorPayloadType, payload.ok() ? *payload : "", {&signer});
}

// ManifestBytes is the serialized content manifest of `payload` as version `version` of
// `channel`.
inline std::string ManifestBytes(const std::string& channel, int64_t version,
                                 const std::string& payload) {
  v1::ContentManifest m;
  m.set_channel(channel);
  m.set_version(version);
  m.set_sha256(Sha256Hex(payload));
  m.set_size(static_cast<int64_t>(payload.size()));
  return m.SerializeAsString();
}

// UploadSignedContent stores `payload` as version `version` of `channel` with its
// manifest signed by `release`, as an accepted upload leaves it.
inline absl::Status UploadSignedContent(FakeStore& store, const std::string& channel,
                                        int64_t version, const std::string& payload,
                                        const Ed25519PrivateKey& release) {
  ContentRecord c;
  c.channel = channel;
  c.version = version;
  c.sha256 = Sha256Hex(payload);
  c.size = static_cast<int64_t>(payload.size());
  c.payload = payload;
  c.envelope_json =
      SignedJson(kManifestPayloadType, ManifestBytes(channel, version, payload), {&release});
  return store.InsertContent(c, AuditRecord{});
}

// FinishRollout creates rollout `id` of `version` of `channel` and completes it, or
// rolls it back and revokes the version.
inline absl::Status FinishRollout(FakeStore& store, const std::string& id,
                                  const std::string& channel, int64_t version, bool revoke) {
  NewRollout create;
  create.rollout.id = id;
  create.rollout.channel = channel;
  create.rollout.version = version;
  create.rollout.position.state = RolloutState::kCanary;
  if (absl::Status created = store.CreateRollout(create); !created.ok()) {
    return created;
  }
  RolloutChange change;
  change.rollout_id = id;
  change.expected_revision = 1;
  change.plan.to.state = revoke ? RolloutState::kRolledBack : RolloutState::kCompleted;
  change.plan.mark_completed = !revoke;
  change.plan.revoke_version = revoke;
  return store.ApplyRolloutChange(change);
}

// TrustKeys are one key per role and the roots they make.
struct TrustKeys {
  Ed25519PrivateKey root_key = NewKey();
  Ed25519PrivateKey release_key = NewKey();
  Ed25519PrivateKey server_key = NewKey();

  // Plan is root `version` naming these keys, expiring a year after `now`.
  RootPlan Plan(int64_t version, absl::Time now) const {
    return RootPlan{version, {&root_key}, &release_key, &server_key, now + absl::Hours(24 * 365)};
  }
};

// TrustFixture is a fake store, its snapshot holder and the role keys.
class TrustFixture : public ::testing::Test, public TrustKeys {
 protected:
  TrustFixture() : store_(clock_), snapshots_(store_) {}

  RootPlan Plan(int64_t version) const { return TrustKeys::Plan(version, clock_.Now()); }

  FakeClock clock_;
  FakeStore store_;
  SnapshotHolder snapshots_;
};

}  // namespace ringwarden::testing

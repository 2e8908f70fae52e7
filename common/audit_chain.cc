#include "common/audit_chain.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"

namespace ringwarden {
namespace {

constexpr absl::string_view kEncodingPrefix = "ringwarden.audit.v1\n";

void AppendNetstring(std::string& out, absl::string_view field) {
  absl::StrAppend(&out, field.size(), ":", field, ",");
}

}  // namespace

std::string AuditChainEncoding(const AuditChainEntry& e) {
  std::string out(kEncodingPrefix);
  AppendNetstring(out, absl::StrCat(e.seq));
  AppendNetstring(out, e.prev_hash);
  AppendNetstring(out, absl::StrCat(e.at_unix_micros));
  for (const std::string* field : {&e.actor, &e.action, &e.rollout_id, &e.from_state, &e.to_state,
                                   &e.reason, &e.evidence_json}) {
    AppendNetstring(out, *field);
  }
  return out;
}

std::string AuditChainHash(const AuditChainEntry& entry) {
  return Sha256Hex(AuditChainEncoding(entry));
}

std::string AuditChainHead::ToString() const { return absl::StrCat(seq, ":", hash); }

absl::StatusOr<AuditChainHead> ParseAuditChainHead(absl::string_view text) {
  // 19 digits of an int64, the colon and a hash; longer input is not echoed back.
  constexpr size_t kMaxHeadLength = 19 + 1 + 64;
  if (text.size() > kMaxHeadLength) {
    return absl::InvalidArgumentError(absl::StrCat("an audit head is SEQ:HASH (at most ",
                                                   kMaxHeadLength, " characters); got ",
                                                   text.size(), " characters"));
  }
  const size_t colon = text.find(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("an audit head is SEQ:HASH, as `ringctl audit verify` prints it; got \"",
                     absl::CHexEscape(text), "\""));
  }
  AuditChainHead head;
  const absl::string_view seq = text.substr(0, colon);
  const bool digits_only = !seq.empty() && seq.find_first_not_of("0123456789") == seq.npos;
  if (!digits_only || !absl::SimpleAtoi(seq, &head.seq) || head.seq < 1) {
    return absl::InvalidArgumentError(absl::StrCat("audit head \"", absl::CHexEscape(text),
                                                   "\": SEQ must be a positive whole number"));
  }
  head.hash = std::string(text.substr(colon + 1));
  if (!IsSha256Hex(head.hash)) {
    return absl::InvalidArgumentError(
        absl::StrCat("audit head \"", absl::CHexEscape(text),
                     "\": HASH must be 64 lowercase hex characters (a SHA-256)"));
  }
  return head;
}

AuditChainVerifier::AuditChainVerifier(std::vector<AuditChainHead> expected) {
  for (AuditChainHead& head : expected) {
    expected_.emplace(head.seq, std::move(head.hash));
  }
}

absl::Status AuditChainVerifier::Fail(int64_t seq, absl::string_view what,
                                      absl::string_view detail) {
  failure_ = absl::DataLossError(absl::StrCat("seq ", seq, ": ", what, ": ", detail));
  return failure_;
}

absl::Status AuditChainVerifier::Add(const AuditChainEntry& e) {
  if (!failure_.ok()) {
    return failure_;
  }
  // The fields checked first are the ones a message may quote.
  if (e.seq < 1) {
    return Fail(e.seq, "malformed entry", "seq must be positive");
  }
  if (!IsSha256Hex(e.prev_hash)) {
    return Fail(e.seq, "malformed entry", "prev_hash is not 64 lowercase hex characters");
  }
  if (!IsSha256Hex(e.entry_hash)) {
    return Fail(e.seq, "malformed entry", "entry_hash is not 64 lowercase hex characters");
  }
  // e.seq >= 1, so e.seq - 1 cannot overflow.
  if (e.seq - 1 < last_seq_) {
    return Fail(e.seq, "fork",
                absl::StrCat("seq ", e.seq, " appears again after seq ", last_seq_,
                             " (a duplicated or reordered entry)"));
  }
  if (e.seq - 1 > last_seq_) {
    return Fail(last_seq_ + 1, "missing entry",
                absl::StrCat("the log skips from seq ", last_seq_, " to seq ", e.seq));
  }
  const std::string computed = AuditChainHash(e);
  if (computed != e.entry_hash) {
    return Fail(e.seq, "edited entry",
                absl::StrCat("its contents hash to ", computed, ", not to its recorded entry_hash ",
                             e.entry_hash));
  }
  if (e.prev_hash != last_hash_) {
    const std::string previous = last_seq_ == 0 ? std::string("the genesis hash")
                                                : absl::StrCat("seq ", last_seq_, "'s entry_hash");
    return Fail(e.seq, "broken link",
                absl::StrCat("prev_hash ", e.prev_hash, " is not ", previous, " ", last_hash_));
  }
  const auto [first, last] = expected_.equal_range(e.seq);
  for (auto it = first; it != last; ++it) {
    if (it->second != e.entry_hash) {
      return Fail(e.seq, "fork",
                  absl::StrCat("the recorded head ", e.seq, ":", it->second, " is not in the log, ",
                               "which holds ", e.seq, ":", e.entry_hash,
                               " (the chain was rewritten from there or before)"));
    }
  }
  last_seq_ = e.seq;
  last_hash_ = e.entry_hash;
  return absl::OkStatus();
}

absl::StatusOr<AuditChainHead> AuditChainVerifier::Finish() {
  if (!failure_.ok()) {
    return failure_;
  }
  // The lowest one beyond the end: the first seq that went missing.
  const auto beyond = expected_.upper_bound(last_seq_);
  if (beyond != expected_.end()) {
    return Fail(beyond->first, "expected head absent",
                absl::StrCat("the recorded head ", beyond->first, ":", beyond->second,
                             " lies beyond the end of the log at seq ", last_seq_,
                             " (entries were removed from its tail, or it was restarted)"));
  }
  return AuditChainHead{last_seq_, last_hash_};
}

}  // namespace ringwarden

#include "server/domain/completion_watch.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ringwarden {

bool HoldForCompletionWatch(absl::Duration watch, std::optional<absl::Time> last_apply,
                            absl::Time now, Decision& decision) {
  if (decision.kind != Decision::Kind::kPromote || !last_apply.has_value()) {
    return false;
  }
  const absl::Time until = *last_apply + watch;
  if (now >= until) {
    return false;
  }
  Evidence& e = decision.evidence;
  e.waiting_for.push_back(
      absl::StrCat("the post-completion watch: every ring is judged until ",
                   absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", until, absl::UTCTimeZone()), " (",
                   absl::FormatDuration(watch), " after the last host took the version)"));
  decision.kind = Decision::Kind::kWait;
  decision.reason = Decision::Reason::kGatePassed;
  decision.summary = absl::StrCat("wait: waiting for ", absl::StrJoin(e.waiting_for, "; "));
  return true;
}

}  // namespace ringwarden

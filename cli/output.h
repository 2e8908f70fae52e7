// output.h: how ringctl prints what the server returns, as tables or as JSON.
//
//   RenderRolloutList(response, OutputFormat::kJson, std::cout);
//
// Every renderer is a pure function of its proto input (and, for watch frames, the
// refresh time), so tests pin the output with goldens. The JSON shapes are an
// interface for scripts, documented in docs/ringctl.md: fields may be added, never
// renamed or removed. Thread-safety: the functions are stateless; a Table is a
// plain value (one thread at a time).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "ringwarden/v1/admin.pb.h"

namespace ringwarden {

enum class OutputFormat { kTable, kJson };

// StateName is the rollout state's enum name, "" for UNSPECIFIED.
std::string StateName(v1::RolloutState state);

// IsFinalState: COMPLETED, ROLLED_BACK or CANCELLED (a HALTED rollout can resume).
bool IsFinalState(v1::RolloutState state);

// FormatTime renders unix seconds as "2024-07-19 04:09:00" (UTC), "-" for 0.
std::string FormatTime(int64_t unix_seconds);

// FormatElapsed renders a non-negative duration compactly: "+45s", "+12m30s", "+2h05m", "+3d04h".
std::string FormatElapsed(absl::Duration d);

// Table prints left-aligned columns separated by two spaces, without trailing blanks.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// ParseEmbeddedJson turns a JSON document carried in a proto string (evidence,
// policies) into JSON: "" becomes null, text that is not JSON stays a string.
nlohmann::json ParseEmbeddedJson(const std::string& text);

// One object per proto message; docs/ringctl.md lists the fields.
nlohmann::json RolloutJson(const v1::Rollout& rollout);
nlohmann::json ContentJson(const v1::ContentInfo& content);
nlohmann::json AgentJson(const v1::AgentInfo& agent);
nlohmann::json AuditEntryJson(const v1::AuditEntry& entry);
nlohmann::json DecisionJson(const v1::RingDecision& decision);
nlohmann::json PolicyJson(const v1::Policy& policy);
nlohmann::json PinJson(const v1::Pin& pin);
nlohmann::json TrustMetadataJson(const v1::TrustMetadata& metadata);

// Renderers: a table (or a few lines) for people, one compact JSON document and a
// newline for scripts.
void RenderRollout(const v1::Rollout& rollout, OutputFormat format, std::ostream& out);
void RenderRolloutList(const v1::ListRolloutsResponse& response, OutputFormat format,
                       std::ostream& out);
void RenderContentList(const v1::ListContentResponse& response, OutputFormat format,
                       std::ostream& out);
void RenderUploaded(const v1::ContentInfo& content, OutputFormat format, std::ostream& out);
void RenderAgents(const v1::ListAgentsResponse& response, OutputFormat format, std::ostream& out);
// RenderAudit prints entries in the order given (the server answers newest first).
void RenderAudit(const v1::ListAuditLogResponse& response, OutputFormat format, std::ostream& out);
// RenderHistory prints one rollout's audit entries as a timeline; `oldest_first`
// must already be in time order. Elapsed times count from the first entry.
void RenderHistory(const std::vector<v1::AuditEntry>& oldest_first, OutputFormat format,
                   std::ostream& out);
void RenderExplain(const v1::ExplainRolloutResponse& response, OutputFormat format,
                   std::ostream& out);
void RenderPolicy(const v1::Policy& policy, OutputFormat format, std::ostream& out);
void RenderPins(const v1::ListPinsResponse& response, OutputFormat format, std::ostream& out);
void RenderPin(const v1::Pin& pin, OutputFormat format, std::ostream& out);
void RenderEmergencyStop(bool active, OutputFormat format, std::ostream& out);
// RenderTrustUploaded prints the root or floor the server accepted.
void RenderTrustUploaded(const v1::TrustMetadata& metadata, OutputFormat format, std::ostream& out);
// RenderTrustList prints the stored roots and floors in the order given.
void RenderTrustList(const v1::ListTrustResponse& response, OutputFormat format, std::ostream& out);
// RenderApprovals prints approval requests, newest first, as given.
void RenderApprovals(const v1::ListApprovalsResponse& response, OutputFormat format,
                     std::ostream& out);
// RenderApproval prints one approval request after a decision.
void RenderApproval(const v1::ApprovalRequest& request, OutputFormat format, std::ostream& out);

// kProgressBarWidth is the number of cells between the brackets of a progress bar.
inline constexpr int kProgressBarWidth = 30;

// ProgressBar draws "[####++xx------]": '#' healthy, '+' applied but not (yet)
// healthy, 'x' failed to apply, '-' the rest of the targeted agents. A cell is
// drawn only when it is fully earned, so a full bar means every agent.
std::string ProgressBar(const v1::RingProgress& progress, int width = kProgressBarWidth);

// RenderWatchFrame prints one frame of `rollout status --watch`: the header, a
// progress bar, the stage and the latest decision per ring, and a closing line
// once the rollout ended or halted. JSON: one line per frame.
void RenderWatchFrame(const v1::ExplainRolloutResponse& response, absl::Time refreshed,
                      OutputFormat format, std::ostream& out);

}  // namespace ringwarden

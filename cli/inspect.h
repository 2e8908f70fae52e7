// inspect.h: what `ringctl keys inspect` says about one of our envelopes.
//
//   ASSIGN_OR_RETURN(Inspection seen, InspectEnvelope({path, json, "", "", absl::Now()}));
//   RenderInspection(seen.report, OutputFormat::kTable, std::cout);
//
// It names the kind (root, floor, content manifest, assignment), decodes the
// signed payload, and checks only what it can: a root's signatures against the
// keys the root itself names, everything against a --trusted-root when one is
// given. A signature it has no key for is reported as not checked, never as
// valid. The report is the `-o json` document (docs/ringctl.md); the table is
// rendered from it. Thread-safety: stateless functions.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/output.h"

namespace ringwarden {

struct InspectRequest {
  std::string path;  // shown as "file"
  std::string envelope_json;
  std::string trusted_root_path;  // empty: no --trusted-root
  std::string trusted_root_json;
  absl::Time now;
};

struct Inspection {
  nlohmann::json report;
  // With a trusted root: OK when every check passed, else why not (for the exit
  // code). Without one: always OK, since nothing is claimed.
  absl::Status verdict;
};

// InspectEnvelope decodes and checks `request.envelope_json`. INVALID_ARGUMENT
// for an envelope that does not parse or is none of ours; the --trusted-root's
// own error (prefixed with its path) when it is not a root signed by a
// threshold of its own root keys. The trusted root's expiry is reported, not
// enforced: verifying an update of an expired root is exactly what agents do.
absl::StatusOr<Inspection> InspectEnvelope(const InspectRequest& request);

// RenderInspection prints `report` as a few blocks of lines and tables, or as
// one JSON line.
void RenderInspection(const nlohmann::json& report, OutputFormat format, std::ostream& out);

}  // namespace ringwarden

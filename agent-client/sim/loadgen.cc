#include "agent-client/sim/loadgen.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/dsse.h"
#include "common/files.h"
#include "common/names.h"
#include "common/pki.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "ringwarden/v1/agent.grpc.pb.h"
#include "ringwarden/v1/trust.pb.h"

namespace ringwarden::agent {

namespace v1 = ::ringwarden::v1;

absl::Status ValidateLoadOptions(const LoadOptions& o) {
  auto refuse = [](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("load generator: ", what));
  };
  if (o.agents < 1 || o.agents > 10'000'000) return refuse("--agents must be 1..10000000");
  if (o.connections < 1 || o.connections > 256) return refuse("--connections must be 1..256");
  if (o.enroll_concurrency < 1 || o.enroll_concurrency > 10000) {
    return refuse("--enroll-concurrency must be 1..10000");
  }
  if (o.max_in_flight < 1 || o.max_in_flight > 1'000'000) {
    return refuse("--max-in-flight must be 1..1000000");
  }
  if (o.call_timeout <= absl::ZeroDuration()) return refuse("the call timeout must be positive");
  if (o.late_after <= absl::ZeroDuration()) return refuse("--late-after must be positive");
  if (o.timeline_slice < absl::ZeroDuration()) return refuse("--timeline-ms must not be negative");
  if (o.id_prefix.empty()) return refuse("the agent id prefix must not be empty");
  if (!o.tls_ca_pem.empty() && o.agents > kMaxTlsAgents) {
    return refuse(absl::StrCat("over TLS each agent holds its own connection: --agents must be 1..",
                               kMaxTlsAgents));
  }
  if (o.tls_ca_pem.empty() && !o.tls_server_name.empty()) {
    return refuse("--server-name needs --ca (TLS)");
  }
  if (!o.anchor.empty() && !o.tls_ca_pem.empty()) {
    return refuse("--compare-with is plaintext only (over TLS, run the sides one after the other)");
  }
  if (!o.anchor.empty() &&
      (o.alternate_every <= absl::ZeroDuration() || o.alternate_every > absl::Hours(1))) {
    return refuse("--alternate-ms must be positive and at most an hour");
  }
  return absl::OkStatus();
}

struct LoadGenerator::Impl {
  // One run's counters; callbacks update them from gRPC's threads.
  struct Run {
    bool open_loop = false;
    absl::Time ends;            // closed loop: no new call after this
    int64_t items = INT64_MAX;  // closed loop: no item from this one on
    std::atomic<int64_t> next_item{0};
    std::atomic<int64_t> calls{0}, ok{0}, failed{0}, missed{0}, not_sent{0}, polls{0};
    std::atomic<int64_t> answered_polls{0}, held_current{0};
    std::atomic<int64_t> in_flight{0};
    absl::Mutex mu;
    absl::CondVar drained;
    std::vector<uint32_t> latencies_us ABSL_GUARDED_BY(mu);
    absl::Time started;
    std::vector<std::vector<uint32_t>> slices ABSL_GUARDED_BY(mu);  // timeline_slice > 0
    std::map<std::string, int64_t> errors ABSL_GUARDED_BY(mu);
    int64_t reply_bytes ABSL_GUARDED_BY(mu) = 0;
    absl::Time last_answer ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  };

  // One call in flight: a poll or a heartbeat of one agent.
  struct Call {
    grpc::ClientContext ctx;
    v1::GetAssignmentRequest poll;
    v1::GetAssignmentResponse poll_answer;
    v1::ReportTelemetryRequest beat;
    v1::ReportTelemetryResponse beat_answer;
    absl::Time due;
    bool is_poll = true;
    bool to_anchor = false;
    size_t agent = 0;
  };

  // The statements agents hold, each slot guarded by one of kStripes mutexes (calls of one
  // agent may overlap when there are fewer agents than calls in flight).
  static constexpr size_t kStripes = 64;
  absl::Mutex held_mu[kStripes];
  std::vector<std::optional<v1::HeldAssignment>> held;

  LoadOptions options;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<v1::AgentService::Stub>> stubs;
  std::vector<std::shared_ptr<grpc::Channel>> anchor_channels;  // OpenLoopCompared's anchor
  std::vector<std::unique_ptr<v1::AgentService::Stub>> anchor_stubs;
  std::vector<std::string> ids;
  std::vector<std::string> credentials;  // "Bearer <token>", or empty
  // Over TLS: each agent's key and certificate chain, and its own connection.
  std::vector<std::string> keys, certificates;
  std::vector<std::unique_ptr<v1::AgentService::Stub>> agent_stubs;
  std::unique_ptr<std::atomic<int64_t>[]> batch_seq;
  bool ready = false;

  Impl(LoadOptions o, std::vector<std::shared_ptr<grpc::Channel>> given,
       std::vector<std::shared_ptr<grpc::Channel>> given_anchor)
      : options(std::move(o)),
        channels(std::move(given)),
        anchor_channels(std::move(given_anchor)) {
    for (int i = 0; channels.empty() && i < options.connections; ++i) {
      grpc::ChannelArguments args;
      args.SetInt("grpc.channel_id", i);  // a TCP connection per channel
      channels.push_back(Connect(args, "", ""));
    }
    // The anchor's connections are as many, plaintext (ValidateLoadOptions), and its own even
    // when it is the server's address: channels of equal arguments would share connections.
    for (int i = 0; !options.anchor.empty() && anchor_channels.empty() && i < options.connections;
         ++i) {
      grpc::ChannelArguments args;
      args.SetInt("grpc.channel_id", options.connections + i);
      anchor_channels.push_back(
          grpc::CreateCustomChannel(options.anchor, grpc::InsecureChannelCredentials(), args));
    }
    for (const auto& c : channels) {
      stubs.push_back(v1::AgentService::NewStub(c));
    }
    for (const auto& c : anchor_channels) {
      anchor_stubs.push_back(v1::AgentService::NewStub(c));
    }
    ids.reserve(options.agents);
    for (int i = 0; i < options.agents; ++i) {
      ids.push_back(absl::StrCat(options.id_prefix, i));
    }
    credentials.assign(ids.size(), "");
    if (tls()) {
      keys.assign(ids.size(), "");
      certificates.assign(ids.size(), "");
    }
    held.resize(ids.size());
    // Batch numbers only grow, across runs too: start from the clock.
    batch_seq.reset(new std::atomic<int64_t>[ids.size()]);
    const int64_t start = absl::ToUnixMillis(absl::Now()) * 1000;
    for (size_t i = 0; i < ids.size(); ++i) {
      batch_seq[i].store(start);
    }
  }

  bool tls() const { return !options.tls_ca_pem.empty(); }

  // EnrollStub: enrollment goes over the shared connections (over TLS without a client
  // certificate: the agent has none yet).
  v1::AgentService::Stub& EnrollStub(size_t agent) { return *stubs[agent % stubs.size()]; }

  // Connect opens a channel to the server: plaintext, or over TLS presenting `cert_chain`
  // (none when empty).
  std::shared_ptr<grpc::Channel> Connect(grpc::ChannelArguments& args, const std::string& key,
                                         const std::string& cert_chain) const {
    if (!tls()) {
      return grpc::CreateCustomChannel(options.server, grpc::InsecureChannelCredentials(), args);
    }
    if (!options.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options.tls_server_name);
    }
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls_ca_pem;
    ssl.pem_private_key = key;
    ssl.pem_cert_chain = cert_chain;
    return grpc::CreateCustomChannel(options.server, grpc::SslCredentials(ssl), args);
  }

  // ConnectAgents gives each agent its own connection presenting its certificate (over TLS).
  void ConnectAgents() {
    agent_stubs.clear();
    if (!tls()) {
      return;
    }
    agent_stubs.reserve(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // not shared with another agent's
      agent_stubs.push_back(v1::AgentService::NewStub(Connect(args, keys[i], certificates[i])));
    }
  }

  // StubFor: the anchor's, the agent's own connection over TLS, else one of the shared ones.
  v1::AgentService::Stub& StubFor(size_t agent, bool to_anchor) {
    if (to_anchor) {
      return *anchor_stubs[agent % anchor_stubs.size()];
    }
    return agent_stubs.empty() ? *stubs[agent % stubs.size()] : *agent_stubs[agent];
  }

  // Start begins item `item` of the sequence (agent item/2, poll then heartbeat; or agent
  // `item` polling only), due at `due`, to the server or the anchor.
  // Each call's callback holds `shared`, so the run outlives its last answer.
  void Start(const std::shared_ptr<Run>& shared, int64_t item, absl::Time due,
             bool to_anchor = false) {
    Run& run = *shared;
    const bool beats = options.heartbeats;
    const size_t agent = static_cast<size_t>((beats ? item / 2 : item) % options.agents);
    auto* call = new Call;
    call->agent = agent;
    call->due = due;
    call->is_poll = !beats || item % 2 == 0;
    call->to_anchor = to_anchor;
    call->ctx.set_deadline(absl::ToChronoTime(absl::Now() + options.call_timeout));
    if (!credentials[agent].empty()) {
      call->ctx.AddMetadata("authorization", credentials[agent]);
    }
    run.calls.fetch_add(1, std::memory_order_relaxed);
    run.in_flight.fetch_add(1, std::memory_order_relaxed);
    auto done = [this, shared, call](grpc::Status status) { Finish(shared, call, status); };
    if (call->is_poll) {
      run.polls.fetch_add(1, std::memory_order_relaxed);
      call->poll.set_agent_id(ids[agent]);
      for (const std::string& channel : options.channels) {
        v1::ChannelVersion* current = call->poll.add_current();
        current->set_channel(channel);
        current->set_version(0);
        call->poll.add_channels(channel);
      }
      call->poll.set_root_version(1);
      if (options.hold_statements) {
        absl::MutexLock lock(&held_mu[agent % kStripes]);
        if (held[agent].has_value()) {
          *call->poll.mutable_held() = *held[agent];
        }
      }
      StubFor(agent, to_anchor)
          .async()
          ->GetAssignment(&call->ctx, &call->poll, &call->poll_answer, std::move(done));
    } else {
      call->beat.set_agent_id(ids[agent]);
      call->beat.set_batch_seq(batch_seq[agent].fetch_add(1) + 1);
      v1::TelemetryEvent* event = call->beat.add_events();
      event->set_observed_unix_ms(absl::ToUnixMillis(absl::Now()));
      v1::Heartbeat* beat = event->mutable_heartbeat();
      beat->set_boot_id("load");
      for (const std::string& channel : options.channels) {
        v1::ChannelVersion* version = beat->add_versions();
        version->set_channel(channel);
        version->set_version(0);
      }
      StubFor(agent, to_anchor)
          .async()
          ->ReportTelemetry(&call->ctx, &call->beat, &call->beat_answer, std::move(done));
    }
  }

  // Hold keeps the statement a poll answer signed as the one its agent holds. The load
  // generator does not verify it (a real agent does): it only names it in the next poll.
  void Hold(const Call& call) {
    const v1::GetAssignmentResponse& answer = call.poll_answer;
    if (!options.hold_statements || answer.signed_assignment().empty()) {
      return;
    }
    std::optional<v1::HeldAssignment> named;
    absl::StatusOr<DsseEnvelope> envelope = ParseEnvelopeJson(answer.signed_assignment());
    v1::AssignmentStatement statement;
    if (envelope.ok() && statement.ParseFromString(envelope->payload)) {
      named.emplace();
      named->set_sequence(statement.sequence());
      named->set_issued_unix_ms(statement.issued_unix_ms());
      named->set_expires_unix_ms(statement.expires_unix_ms());
      named->set_payload_sha256(Sha256Hex(envelope->payload));
    }
    absl::MutexLock lock(&held_mu[call.agent % kStripes]);
    held[call.agent] = std::move(named);
  }

  void Finish(const std::shared_ptr<Run>& shared, Call* call, const grpc::Status& status) {
    Run& run = *shared;
    if (status.ok() && call->is_poll && call->poll_answer.held_assignment_current()) {
      run.held_current.fetch_add(1, std::memory_order_relaxed);
    }
    const absl::Time now = absl::Now();
    const absl::Duration latency = now - call->due;
    const bool late = run.open_loop && latency > options.late_after;
    if (status.ok()) {
      run.ok.fetch_add(1, std::memory_order_relaxed);
    } else {
      run.failed.fetch_add(1, std::memory_order_relaxed);
    }
    if (run.open_loop && (!status.ok() || late)) {
      run.missed.fetch_add(1, std::memory_order_relaxed);
    }
    {
      absl::MutexLock lock(&run.mu);
      if (status.ok()) {
        const auto latency_us = static_cast<uint32_t>(
            std::min<int64_t>(absl::ToInt64Microseconds(latency), UINT32_MAX));
        run.latencies_us.push_back(latency_us);
        if (options.timeline_slice > absl::ZeroDuration() && call->due >= run.started) {
          const auto slice =
              static_cast<size_t>((call->due - run.started) / options.timeline_slice);
          if (slice < 1'000'000) {
            if (run.slices.size() <= slice) run.slices.resize(slice + 1);
            run.slices[slice].push_back(latency_us);
          }
        }
        if (call->is_poll) {
          run.answered_polls.fetch_add(1, std::memory_order_relaxed);
          run.reply_bytes += static_cast<int64_t>(call->poll_answer.ByteSizeLong());
        }
      } else {
        // gRPC and Abseil number their codes alike.
        ++run.errors[absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()))];
      }
      run.last_answer = std::max(run.last_answer, now);
    }
    // The anchor's answers are not statements: agents keep what the server signed.
    if (status.ok() && call->is_poll && !call->to_anchor) {
      Hold(*call);
    }
    delete call;
    if (!run.open_loop && now < run.ends) {
      if (const int64_t item = run.next_item.fetch_add(1); item < run.items) {
        Start(shared, item, absl::Now());
      }
    }
    if (run.in_flight.fetch_sub(1) == 1) {
      absl::MutexLock lock(&run.mu);
      run.drained.SignalAll();
    }
  }

  // Drain waits for every call of `run` to answer (each has a deadline).
  void Drain(Run& run) {
    absl::MutexLock lock(&run.mu);
    const absl::Time give_up = absl::Now() + options.call_timeout + absl::Seconds(5);
    while (run.in_flight.load() > 0 && absl::Now() < give_up) {
      run.drained.WaitWithDeadline(&run.mu,
                                   std::min(give_up, absl::Now() + absl::Milliseconds(50)));
    }
  }

  // Schedule starts item i at started + i / rate until `duration` has passed, into `server`,
  // or with an `anchor` into each in turns of options.alternate_every, then waits for every
  // answer.
  void Schedule(double rate, absl::Duration duration, const std::shared_ptr<Run>& server,
                const std::shared_ptr<Run>& anchor) {
    const absl::Time started = absl::Now();
    for (Run* run : {server.get(), anchor.get()}) {
      if (run != nullptr) {
        run->open_loop = true;
        run->started = started;
      }
    }
    const absl::Time ends = started + duration;
    const absl::Duration interval = absl::Seconds(1) / rate;
    for (int64_t item = 0;; ++item) {
      const absl::Time due = started + item * interval;
      if (due >= ends) {
        break;
      }
      // Wait for the call's time; a generator that fell behind starts it at once, and its
      // latency counts from `due`.
      for (absl::Time now = absl::Now(); now < due; now = absl::Now()) {
        if (due - now > absl::Milliseconds(2)) {
          absl::SleepFor(due - now - absl::Milliseconds(1));
        } else {
          std::this_thread::yield();
        }
      }
      // Turns go server, anchor, anchor, server, and again. In strict alternation, the side that
      // went second read about 1.25x the first's p99 in four runs with the same target on both
      // sides, for a reason not found; callers also swap which side starts (anchor_first).
      absl::Duration into_turn;
      const int64_t turn = absl::IDivDuration(due - started, options.alternate_every, &into_turn);
      const bool to_anchor =
          anchor != nullptr && ((turn % 4 == 1 || turn % 4 == 2) != options.anchor_first);
      const std::shared_ptr<Run>& shared = to_anchor ? anchor : server;
      if (shared->in_flight.load(std::memory_order_relaxed) >= options.max_in_flight) {
        shared->calls.fetch_add(1);
        shared->not_sent.fetch_add(1);
        shared->missed.fetch_add(1);
        continue;
      }
      Start(shared, item, due, to_anchor);
    }
    Drain(*server);
    if (anchor != nullptr) {
      Drain(*anchor);
    }
  }

  LoadResult Summarize(Run& run) {
    const absl::Time started = run.started;
    LoadResult r;
    r.calls = run.calls.load();
    r.ok = run.ok.load();
    r.failed = run.failed.load();
    r.missed = run.missed.load();
    r.not_sent = run.not_sent.load();
    r.polls = run.polls.load();
    r.held_current = run.held_current.load();
    absl::MutexLock lock(&run.mu);
    r.errors = run.errors;
    r.seconds = absl::ToDoubleSeconds(std::max(run.last_answer, started) - started);
    r.calls_per_second = r.seconds > 0 ? static_cast<double>(r.ok) / r.seconds : 0;
    std::vector<uint32_t>& l = run.latencies_us;
    std::sort(l.begin(), l.end());
    auto at = [&l](double q) {
      return l.empty() ? 0.0
                       : static_cast<double>(
                             l[std::min(l.size() - 1, static_cast<size_t>(q * l.size()))]);
    };
    r.p50_us = at(0.5);
    r.p90_us = at(0.9);
    r.p99_us = at(0.99);
    r.p999_us = at(0.999);
    r.max_us = l.empty() ? 0 : l.back();
    for (std::vector<uint32_t>& slice : run.slices) {
      std::sort(slice.begin(), slice.end());
      LoadResult::Slice out;
      out.calls = static_cast<int64_t>(slice.size());
      if (!slice.empty()) {
        out.p50_us = slice[slice.size() / 2];
        out.max_us = slice.back();
      }
      r.timeline.push_back(out);
    }
    const int64_t answered_polls = run.answered_polls.load();
    r.mean_poll_reply_bytes =
        answered_polls > 0 ? static_cast<double>(run.reply_bytes) / answered_polls : 0;
    return r;
  }
};

LoadGenerator::LoadGenerator(LoadOptions options)
    : impl_(std::make_unique<Impl>(std::move(options),
                                   std::vector<std::shared_ptr<grpc::Channel>>{},
                                   std::vector<std::shared_ptr<grpc::Channel>>{})) {}

LoadGenerator::LoadGenerator(LoadOptions options,
                             std::vector<std::shared_ptr<grpc::Channel>> channels,
                             std::vector<std::shared_ptr<grpc::Channel>> anchor_channels)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(channels),
                                   std::move(anchor_channels))) {}

LoadGenerator::~LoadGenerator() = default;

void LoadGenerator::UseUnenrolledIds() { impl_->ready = true; }

absl::Status LoadGenerator::Enroll() {
  if (absl::Status valid = ValidateLoadOptions(impl_->options); !valid.ok()) {
    return valid;
  }
  Impl& impl = *impl_;
  // Over TLS each agent makes its own key first; the CSR over it is what it enrolls with.
  std::vector<std::string> csrs(impl.tls() ? impl.ids.size() : 0);
  for (size_t i = 0; i < csrs.size(); ++i) {
    absl::StatusOr<AgentKeyRequest> key = MakeAgentKeyRequest(impl.ids[i]);
    if (!key.ok()) {
      return absl::InternalError(
          absl::StrCat("cannot make a key for ", impl.ids[i], ": ", key.status().message()));
    }
    impl.keys[i] = std::move(key->private_key_pem);
    csrs[i] = std::move(key->csr_pem);
  }
  std::vector<size_t> pending(impl.ids.size());
  for (size_t i = 0; i < pending.size(); ++i) {
    pending[i] = i;
  }
  std::string last_error;
  for (int attempt = 0; attempt < 2 && !pending.empty(); ++attempt) {
    // Shared with every callback, so it outlives the last of them.
    struct Round {
      absl::Mutex mu;
      absl::CondVar cv;
      std::vector<size_t> agents;
      size_t next ABSL_GUARDED_BY(mu) = 0;
      size_t done ABSL_GUARDED_BY(mu) = 0;
      std::vector<size_t> failed ABSL_GUARDED_BY(mu);
      std::string last_error ABSL_GUARDED_BY(mu);
    };
    struct Enrolling {
      grpc::ClientContext ctx;
      v1::EnrollRequest req;
      v1::EnrollResponse resp;
      size_t agent = 0;
    };
    auto round = std::make_shared<Round>();
    round->agents = pending;
    // Launch starts the round's next enrollment, if any; each answer launches the next.
    std::shared_ptr<std::function<void()>> launch = std::make_shared<std::function<void()>>();
    std::weak_ptr<std::function<void()>> weak_launch = launch;
    *launch = [&impl, &csrs, round, weak_launch] {
      size_t index;
      {
        absl::MutexLock lock(&round->mu);
        if (round->next >= round->agents.size()) {
          return;
        }
        index = round->next++;
      }
      auto* e = new Enrolling;
      e->agent = round->agents[index];
      e->ctx.set_deadline(absl::ToChronoTime(absl::Now() + impl.options.call_timeout));
      e->req.set_agent_id(impl.ids[e->agent]);
      e->req.set_enrollment_token(impl.options.enrollment_token);
      e->req.set_hostname(impl.ids[e->agent]);
      std::shared_ptr<std::function<void()>> next = weak_launch.lock();
      if (impl.tls()) {
        e->req.set_csr_pem(csrs[e->agent]);
      }
      auto done = [&impl, round, e, next](grpc::Status s) {
        const bool tls = impl.tls();
        const bool enrolled =
            s.ok() && !(tls ? e->resp.certificate_pem() : e->resp.agent_token()).empty();
        // Each agent is written by its own callback only.
        if (enrolled && tls) {
          impl.certificates[e->agent] = e->resp.certificate_pem();
        } else if (enrolled) {
          impl.credentials[e->agent] = absl::StrCat("Bearer ", e->resp.agent_token());
        }
        const size_t agent = e->agent;
        const std::string error =
            !s.ok() ? s.error_message()
            : tls   ? "the server sent no certificate (is it serving TLS with an agent CA?)"
                    : "the server sent no bearer credential (is it --insecure?)";
        delete e;
        if (next != nullptr) {
          (*next)();
        }
        absl::MutexLock lock(&round->mu);
        if (!enrolled) {
          round->failed.push_back(agent);
          round->last_error = error;
        }
        ++round->done;
        round->cv.SignalAll();
      };
      impl.EnrollStub(e->agent).async()->Enroll(&e->ctx, &e->req, &e->resp, std::move(done));
    };
    const size_t initial = std::min<size_t>(impl.options.enroll_concurrency, pending.size());
    for (size_t i = 0; i < initial; ++i) {
      (*launch)();
    }
    absl::MutexLock lock(&round->mu);
    while (round->done < round->agents.size()) {
      round->cv.Wait(&round->mu);
    }
    pending = round->failed;
    last_error = round->last_error;
  }
  if (!pending.empty()) {
    return absl::UnavailableError(absl::StrCat(pending.size(), " agents could not enroll (",
                                               impl.ids[pending.front()], "): ", last_error));
  }
  impl.ConnectAgents();
  impl.ready = true;
  return absl::OkStatus();
}

absl::Status LoadGenerator::SaveCredentials(const std::string& path) const {
  if (!impl_->ready) {
    return absl::FailedPreconditionError("enroll the agents first");
  }
  std::string text;
  for (size_t i = 0; i < impl_->ids.size(); ++i) {
    if (impl_->tls()) {
      absl::StrAppend(&text, impl_->ids[i], " ", absl::Base64Escape(impl_->keys[i]), " ",
                      absl::Base64Escape(impl_->certificates[i]), "\n");
      continue;
    }
    const std::string& credential = impl_->credentials[i];
    absl::StrAppend(&text, impl_->ids[i], " ", absl::StripPrefix(credential, "Bearer "), "\n");
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  // open's mode applies only to a new file: an existing one readable by others would keep
  // its mode, and the credentials (over TLS, private keys) would be readable.
  if (::fchmod(fd, 0600) != 0) {
    const int error = errno;
    ::close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot restrict ", path, " to its owner: ", std::strerror(error)));
  }
  const ssize_t written = ::write(fd, text.data(), text.size());
  ::close(fd);
  if (written != static_cast<ssize_t>(text.size())) {
    return absl::UnavailableError(absl::StrCat("short write to ", path));
  }
  return absl::OkStatus();
}

absl::Status LoadGenerator::LoadCredentials(const std::string& path) {
  if (absl::Status valid = ValidateLoadOptions(impl_->options); !valid.ok()) {
    return valid;
  }
  const bool tls = impl_->tls();
  // A token, or a key or certificate chain (a few kilobytes of PEM) in base64, per field.
  constexpr size_t kMaxTokenField = 4096, kMaxPemField = 16384;
  // No larger than a file of these agents can be: an id and its fields, per line.
  const size_t max_line =
      kMaxAgentIdLength + (tls ? 2 * (kMaxPemField + 1) : kMaxTokenField + 1) + 1;
  absl::StatusOr<std::string> text = ReadFileAtMost(path, impl_->ids.size() * max_line);
  if (!text.ok()) {
    return text.status();
  }
  std::vector<absl::string_view> lines = absl::StrSplit(*text, '\n');
  if (!lines.empty() && lines.back().empty()) {
    lines.pop_back();  // the last line's newline
  }
  std::vector<std::string> credentials, keys, certificates;
  for (absl::string_view line : lines) {
    const size_t n = credentials.size();
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    std::string key, chain;
    const bool holds =
        n < impl_->ids.size() && fields.size() == (tls ? 3u : 2u) && fields[0] == impl_->ids[n] &&
        !fields[1].empty() && fields[1].size() <= (tls ? kMaxPemField : kMaxTokenField) &&
        (!tls || (fields[2].size() <= kMaxPemField && absl::Base64Unescape(fields[1], &key) &&
                  absl::Base64Unescape(fields[2], &chain) && !key.empty() && !chain.empty()));
    // The certificate must be one, and name this agent: lines of another agent, or a key file
    // given for a certificate, are refused here rather than as failed calls later.
    if (holds && tls) {
      absl::StatusOr<CertificateInfo> certificate = InspectCertificate(chain);
      if (!certificate.ok() || certificate->uri_san != AgentSpiffeId(impl_->ids[n])) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":", n + 1, ": the certificate is not ", impl_->ids[n], "'s (",
                         certificate.ok() ? absl::StrCat("it names ", certificate->uri_san)
                                          : std::string(certificate.status().message()),
                         ")"));
      }
    }
    if (!holds) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", n + 1, ": expected \"", n < impl_->ids.size() ? impl_->ids[n] : "",
          tls ? " <key> <certificate>\" (base64 PEM; " : " <token>\" (",
          "the agents of this --agents and --id-prefix, in order)"));
    }
    credentials.push_back(tls ? "" : absl::StrCat("Bearer ", fields[1]));
    keys.push_back(std::move(key));
    certificates.push_back(std::move(chain));
  }
  if (credentials.size() != impl_->ids.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " holds ", credentials.size(), " credentials, not ", impl_->ids.size()));
  }
  impl_->credentials = std::move(credentials);
  if (tls) {
    impl_->keys = std::move(keys);
    impl_->certificates = std::move(certificates);
  }
  impl_->ConnectAgents();
  impl_->ready = true;
  return absl::OkStatus();
}

namespace {

// CheckClosedRun refuses a closed-loop run (or warm-up) the generator cannot start.
absl::Status CheckClosedRun(const LoadOptions& options, bool ready, int concurrency) {
  if (absl::Status valid = ValidateLoadOptions(options); !valid.ok()) {
    return valid;
  }
  if (!ready) {
    return absl::FailedPreconditionError("enroll the agents first (or use unenrolled ids)");
  }
  if (concurrency < 1 || concurrency > options.max_in_flight) {
    return absl::InvalidArgumentError("concurrency must be 1..max_in_flight");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LoadResult> LoadGenerator::ClosedLoop(int concurrency, absl::Duration duration) {
  if (!impl_->options.anchor.empty()) {
    return absl::InvalidArgumentError("an anchor (--compare-with) needs a compared run");
  }
  if (absl::Status ok = CheckClosedRun(impl_->options, impl_->ready, concurrency); !ok.ok()) {
    return ok;
  }
  if (duration <= absl::ZeroDuration() || duration > absl::Hours(24)) {
    return absl::InvalidArgumentError("the duration must be positive and at most a day");
  }
  auto shared = std::make_shared<Impl::Run>();
  Impl::Run& run = *shared;
  const absl::Time started = absl::Now();
  run.started = started;
  run.ends = started + duration;
  for (int i = 0; i < concurrency; ++i) {
    impl_->Start(shared, run.next_item.fetch_add(1), absl::Now());
  }
  absl::SleepFor(duration);
  impl_->Drain(run);
  return impl_->Summarize(run);
}

absl::StatusOr<LoadResult> LoadGenerator::WarmUp(int concurrency) {
  if (absl::Status ok = CheckClosedRun(impl_->options, impl_->ready, concurrency); !ok.ok()) {
    return ok;
  }
  // Polls only, agent i as item i: heartbeats are restored for the runs after.
  const bool heartbeats = impl_->options.heartbeats;
  impl_->options.heartbeats = false;
  auto shared = std::make_shared<Impl::Run>();
  Impl::Run& run = *shared;
  const absl::Time started = absl::Now();
  run.started = started;
  run.ends = absl::InfiniteFuture();
  run.items = impl_->options.agents;
  // Answers start the next items as this loop runs, so each item number is checked here too.
  for (int i = 0; i < concurrency; ++i) {
    if (const int64_t item = run.next_item.fetch_add(1); item < run.items) {
      impl_->Start(shared, item, absl::Now());
    }
  }
  {
    absl::MutexLock lock(&run.mu);
    run.mu.Await(absl::Condition(
        +[](Impl::Run* r) { return r->in_flight.load() == 0 && r->next_item.load() >= r->items; },
        &run));
  }
  impl_->options.heartbeats = heartbeats;
  return impl_->Summarize(run);
}

namespace {

// CheckOpenRun refuses an open-loop run the generator cannot start.
absl::Status CheckOpenRun(const LoadOptions& options, bool ready, double calls_per_second,
                          absl::Duration duration) {
  if (absl::Status valid = ValidateLoadOptions(options); !valid.ok()) {
    return valid;
  }
  if (!ready) {
    return absl::FailedPreconditionError("enroll the agents first (or use unenrolled ids)");
  }
  if (!(calls_per_second > 0) || calls_per_second > 1e7) {
    return absl::InvalidArgumentError("the rate must be in (0, 10000000] calls per second");
  }
  if (duration <= absl::ZeroDuration() || duration > absl::Hours(24)) {
    return absl::InvalidArgumentError("the duration must be positive and at most a day");
  }
  return absl::OkStatus();
}

// Connected waits until each of `channels` is connected, for at most `timeout` in all.
bool Connected(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
               absl::Duration timeout) {
  const auto deadline = absl::ToChronoTime(absl::Now() + timeout);
  for (const auto& channel : channels) {
    if (!channel->WaitForConnected(deadline)) {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<LoadResult> LoadGenerator::OpenLoop(double calls_per_second,
                                                   absl::Duration duration) {
  if (!impl_->options.anchor.empty()) {
    return absl::InvalidArgumentError("an anchor (--compare-with) needs a compared run");
  }
  RETURN_IF_ERROR(CheckOpenRun(impl_->options, impl_->ready, calls_per_second, duration));
  auto run = std::make_shared<Impl::Run>();
  impl_->Schedule(calls_per_second, duration, run, nullptr);
  return impl_->Summarize(*run);
}

absl::StatusOr<ComparedResult> LoadGenerator::OpenLoopCompared(double calls_per_second,
                                                               absl::Duration duration) {
  RETURN_IF_ERROR(CheckOpenRun(impl_->options, impl_->ready, calls_per_second, duration));
  if (impl_->anchor_stubs.empty()) {
    return absl::InvalidArgumentError("a compared run needs an anchor (--compare-with)");
  }
  // A side still connecting when its first turn begins would count the connection as latency.
  if (!Connected(impl_->channels, impl_->options.call_timeout)) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to the server at ", impl_->options.server));
  }
  if (!Connected(impl_->anchor_channels, impl_->options.call_timeout)) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to the anchor at ", impl_->options.anchor));
  }
  auto server = std::make_shared<Impl::Run>();
  auto anchor = std::make_shared<Impl::Run>();
  impl_->Schedule(calls_per_second, duration, server, anchor);
  return ComparedResult{impl_->Summarize(*server), impl_->Summarize(*anchor)};
}

std::string LoadResult::ToLine() const {
  std::string line = absl::StrFormat(
      "%d calls (%d polls): %d ok, %d failed, %d missed (%d not sent) in %.1f s = %.0f/s; "
      "latency p50 %.0f us, p90 %.0f, p99 %.0f, p99.9 %.0f, max %.0f; poll reply %.0f B; %d "
      "answered with the held statement current",
      calls, polls, ok, failed, missed, not_sent, seconds, calls_per_second, p50_us, p90_us, p99_us,
      p999_us, max_us, mean_poll_reply_bytes, held_current);
  for (const auto& [code, n] : errors) {
    absl::StrAppend(&line, "; ", code, " x", n);
  }
  return line;
}

std::string LoadResult::ToJson() const {
  nlohmann::json j = {{"calls", calls},
                      {"polls", polls},
                      {"ok", ok},
                      {"failed", failed},
                      {"missed", missed},
                      {"not_sent", not_sent},
                      {"seconds", seconds},
                      {"calls_per_second", calls_per_second},
                      {"p50_us", p50_us},
                      {"p90_us", p90_us},
                      {"p99_us", p99_us},
                      {"p999_us", p999_us},
                      {"max_us", max_us},
                      {"mean_poll_reply_bytes", mean_poll_reply_bytes},
                      {"held_current", held_current},
                      {"errors", errors}};
  if (!timeline.empty()) {
    nlohmann::json slices = nlohmann::json::array();
    for (const Slice& slice : timeline) {
      slices.push_back({slice.calls, slice.p50_us, slice.max_us});
    }
    j["timeline"] = std::move(slices);  // [calls, p50_us, max_us] per slice
  }
  return j.dump();
}

}  // namespace ringwarden::agent

#include "server/tls.h"

#include <arpa/inet.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace ringwarden {
namespace {

absl::Status CheckReadable(const std::string& path, absl::string_view flag) {
  if (path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " is required"));
  }
  absl::StatusOr<std::string> pem = ReadPemFile(path);
  if (!pem.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", pem.status().message()));
  }
  if (!absl::StartsWith(*pem, "-----BEGIN ")) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, " is not a PEM file"));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsLoopbackAddress(absl::string_view address) {
  absl::string_view host = address;
  if (const size_t colon = address.rfind(':'); colon != absl::string_view::npos) {
    host = address.substr(0, colon);
  }
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") {
    return true;
  }
  const std::string text(host);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  return inet_pton(AF_INET6, text.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ListenCredentials(
    const TlsFiles& files, bool insecure, absl::string_view listen,
    absl::Duration reload_interval) {
  const bool any_tls = !files.cert.empty() || !files.key.empty() || !files.client_ca.empty();
  if (insecure) {
    if (any_tls) {
      return absl::InvalidArgumentError(
          "--insecure cannot be combined with --tls-cert, --tls-key or --client-ca");
    }
    if (!IsLoopbackAddress(listen)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "refusing to serve plaintext on ", listen,
          ", which is reachable from other hosts; use TLS (--tls-cert, --tls-key, --client-ca) "
          "or listen on 127.0.0.1"));
    }
    return grpc::InsecureServerCredentials();
  }
  if (!any_tls) {
    return absl::InvalidArgumentError(
        "TLS is required: pass --tls-cert, --tls-key and --client-ca (or --insecure for "
        "plaintext on loopback only)");
  }
  if (absl::Status s = CheckReadable(files.cert, "--tls-cert"); !s.ok()) return s;
  if (absl::Status s = CheckReadable(files.key, "--tls-key"); !s.ok()) return s;
  if (absl::Status s = CheckReadable(files.client_ca, "--client-ca"); !s.ok()) return s;
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.key, files.cert, files.client_ca,
      static_cast<unsigned int>(std::max<int64_t>(1, absl::ToInt64Seconds(reload_interval))));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  // Asked for, and verified when given: agents prove themselves with it;
  // ringctl and not-yet-enrolled agents use tokens instead.
  options.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace ringwarden

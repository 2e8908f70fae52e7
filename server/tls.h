// tls.h: the server's transport security.
//
// TLS is the default: the server presents --tls-cert/--tls-key and asks every
// client for a certificate, verifying any it gets against --client-ca (agents
// present the certificate Enroll issued them; ringctl and agents that have not
// enrolled yet present none and prove themselves with a token instead). The
// files are watched and reloaded when they change, without a restart.
// Plaintext needs an explicit --insecure and a loopback address.
// Thread-safety: free functions.
#pragma once

#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ringwarden {

struct TlsFiles {
  std::string cert;       // PEM chain the server presents
  std::string key;        // its private key
  std::string client_ca;  // PEM bundle that verifies client certificates
};

// IsLoopbackAddress reports whether "host:port" names only this host
// (127.0.0.0/8, ::1 or localhost).
bool IsLoopbackAddress(absl::string_view address);

// ListenCredentials checks the choice between TLS and --insecure and returns
// the credentials to listen with: INVALID_ARGUMENT when TLS files are missing
// or unreadable without --insecure, when --insecure is combined with TLS
// files, or when --insecure would listen beyond loopback.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ListenCredentials(
    const TlsFiles& files, bool insecure, absl::string_view listen, absl::Duration reload_interval);

}  // namespace ringwarden

#!/usr/bin/env bash
# Makes a throwaway PKI for a local ringwarden in DIR (default ./.ringwarden/tls):
#   server-ca.crt        verifies the server (give it to ringctl and agents as --ca)
#   server.crt/.key      the server's certificate, for localhost and 127.0.0.1
#   agent-ca.crt/.key    issues agent certificates (server: --client-ca, --agent-ca-key)
# Keys are ECDSA P-256 and readable by the owner only. For development and
# tests: production CAs live in the vendor's PKI, not next to the server.
set -euo pipefail
dir=${1:-./.ringwarden/tls}
mkdir -p "${dir}"
umask 077
cd "${dir}"
days=${RINGWARDEN_TLS_DAYS:-30}

ca() {  # ca NAME SUBJECT
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
    -keyout "$1.key" -out "$1.crt" -days "${days}" -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
ca server-ca "ringwarden throwaway server CA"
ca agent-ca "ringwarden throwaway agent CA"

openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
  -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
cat > server.ext <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
EXT
openssl x509 -req -in server.csr -CA server-ca.crt -CAkey server-ca.key -CAcreateserial \
  -days "${days}" -sha256 -extfile server.ext -out server.crt 2>/dev/null
rm -f server.csr server.ext server-ca.srl
chmod 644 server-ca.crt agent-ca.crt server.crt

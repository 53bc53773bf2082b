#!/bin/sh
# Regenerates the throwaway PKI the freestanding proof embeds (it cannot make one at
# build time without std): a CA and a "localhost" server leaf, both ECDSA P-256, valid
# for 100 years from the day this runs. The program's fixed clock says 2030-01-01, so
# run this before that date (or move the clock in src/main.rs).
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/ca.key"
openssl req -x509 -new -key "$tmp/ca.key" -sha256 -days 36500 \
    -subj "/CN=tlsflow freestanding test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -outform DER -out ca.der
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/server.key"
openssl req -new -key "$tmp/server.key" -subj "/CN=localhost" -out "$tmp/server.csr"
cat > "$tmp/ext.cnf" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost
EXT
openssl x509 -req -in "$tmp/server.csr" -CA ca.der -CAform DER -CAkey "$tmp/ca.key" \
    -sha256 -days 36500 -extfile "$tmp/ext.cnf" -set_serial 2 \
    -outform DER -out server.der
openssl pkcs8 -topk8 -nocrypt -in "$tmp/server.key" -outform DER -out server.key.der

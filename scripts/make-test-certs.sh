#!/usr/bin/env bash
# Test PKI for pgward's integration tests, written into DIR:
#   ca.crt / ca.key            test CA (CN=pgward test CA)
#   server.crt / server.key    PostgreSQL server, CN=localhost, SAN DNS:localhost, IP:127.0.0.1
#   gateway.crt / gateway.key  pgward gateway, same names, its own key
#   client.crt / client.key    client certificate, CN=alice
# EC P-256 keys, mode 0600. Idempotent: an existing complete set is left alone. Concurrent callers
# serialize on DIR/.lock; files are generated in a scratch directory and moved in, with the
# `.complete` marker written last, so a reader never sees a half-made set.
set -euo pipefail

die() {
  echo "make-test-certs.sh: error: $*" >&2
  exit 1
}

[ $# -eq 1 ] || die "usage: make-test-certs.sh DIR"
DIR=$1
command -v openssl >/dev/null 2>&1 || die "openssl not found on PATH (apt-get install openssl)"
command -v flock >/dev/null 2>&1 || die "flock not found on PATH (util-linux)"

mkdir -p "$DIR" || die "cannot create $DIR"
DIR=$(cd "$DIR" && pwd)
FILES=(ca.crt ca.key server.crt server.key gateway.crt gateway.key client.crt client.key)

complete() {
  [ -f "$DIR/.complete" ] || return 1
  local f
  for f in "${FILES[@]}"; do [ -s "$DIR/$f" ] || return 1; done
}

complete && exit 0

exec 9>"$DIR/.lock"
flock -w 60 9 || die "timed out waiting for the lock on $DIR/.lock"
complete && exit 0

WORK=$(mktemp -d "$DIR/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
umask 077
DAYS=3650

ossl() {
  local out
  if ! out=$(openssl "$@" 2>&1); then
    die "openssl $1 failed: $out"
  fi
}

newkey() {
  ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/$1.key"
}

cat >"$WORK/ext.cnf" <<'EOF'
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

newkey ca
printf '[req]\ndistinguished_name = dn\n[dn]\n' >"$WORK/req.cnf"
cat "$WORK/ext.cnf" >>"$WORK/req.cnf"
ossl req -x509 -new -key "$WORK/ca.key" -sha256 -days "$DAYS" -subj "/O=pgward tests/CN=pgward test CA" \
  -config "$WORK/req.cnf" -extensions ca -out "$WORK/ca.crt"

# sign NAME SUBJECT SECTION
sign() {
  newkey "$1"
  ossl req -new -key "$WORK/$1.key" -subj "$2" -out "$WORK/$1.csr"
  ossl x509 -req -in "$WORK/$1.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" -CAcreateserial -sha256 \
    -days "$DAYS" -extfile "$WORK/ext.cnf" -extensions "$3" -out "$WORK/$1.crt"
}

sign server "/O=pgward tests/CN=localhost" server
sign gateway "/O=pgward tests/CN=localhost" server
sign client "/O=pgward tests/CN=alice" client

for f in server gateway client; do
  ossl verify -CAfile "$WORK/ca.crt" "$WORK/$f.crt"
done

rm -f "$DIR/.complete"
for f in "${FILES[@]}"; do
  case $f in
    *.key) chmod 0600 "$WORK/$f" ;;
    *.crt) chmod 0644 "$WORK/$f" ;;
  esac
  mv -f "$WORK/$f" "$DIR/$f"
done
touch "$DIR/.complete"

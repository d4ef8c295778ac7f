#!/usr/bin/env bash
# Certificates and secrets for the TLS/SASL side of the local stack, all under $TLS_DIR
# ($STACK_DIR/tls), generated locally with openssl and regenerated when missing or expiring:
#   ca.crt ca.key            the stack's own CA (10 years); the only CA the services trust
#   server.crt server.key    one server certificate (SANs localhost, 127.0.0.1, ::1) for Kafka's
#                            SASL_SSL listener, PostgreSQL and the registry's auth proxy
#   server.pem               server.key + server.crt, Kafka's PEM keystore
#   client-cdcd_cert.crt/.key  client certificate (CN=cdcd_cert) for PostgreSQL `cert` auth
#   kafka.user / kafka.password        SCRAM-SHA-512 user of the SASL_SSL listener
#   postgres.user / postgres.password  PostgreSQL user that logs in with scram over TLS only
#   registry.user / registry.password  basic-auth user of the registry's auth proxy
#   kafka-client.properties  client settings for the Kafka command-line tools on SASL_SSL
# Passwords are random (24 characters), written once, mode 0600; nothing prints them.
# When the CA is regenerated every certificate is, and the services pick them up on "up".
#   tls.sh up | down | status
source "$(dirname "$0")/lib.sh"

ca_days=3650
cert_days=825

# valid CERT: the file exists and is good for at least 30 more days.
valid() { [ -s "$1" ] && openssl x509 -in "$1" -noout -checkend $((30 * 86400)) >/dev/null 2>&1; }

# signed_by_ca CERT: CERT was issued by the current ca.crt.
signed_by_ca() { openssl verify -CAfile "$TLS_DIR/ca.crt" "$1" >/dev/null 2>&1; }

# issue NAME SUBJECT EXT: a key and a certificate NAME.{key,crt} signed by the CA.
issue() {
  local name=$1 subj=$2 ext=$3
  openssl req -new -newkey rsa:2048 -nodes -keyout "$TLS_DIR/$name.key.tmp" -subj "$subj" \
    -out "$TLS_DIR/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" >"$TLS_DIR/$name.ext"
  openssl x509 -req -in "$TLS_DIR/$name.csr" -CA "$TLS_DIR/ca.crt" -CAkey "$TLS_DIR/ca.key" \
    -CAcreateserial -days "$cert_days" -sha256 -extfile "$TLS_DIR/$name.ext" -out "$TLS_DIR/$name.crt.tmp" 2>/dev/null
  # PKCS#8, unencrypted: what Kafka's PEM keystore, PostgreSQL, nginx and Go all read.
  openssl pkey -in "$TLS_DIR/$name.key.tmp" -out "$TLS_DIR/$name.key"
  chmod 600 "$TLS_DIR/$name.key"
  mv "$TLS_DIR/$name.crt.tmp" "$TLS_DIR/$name.crt"
  rm -f "$TLS_DIR/$name.key.tmp" "$TLS_DIR/$name.csr" "$TLS_DIR/$name.ext"
}

# secret NAME USER: NAME.user holds USER; NAME.password a random password, kept once written.
secret() {
  local name=$1 user=$2
  printf '%s' "$user" >"$TLS_DIR/$name.user"
  if [ ! -s "$TLS_DIR/$name.password" ]; then
    (umask 077 && openssl rand -base64 18 | tr -d '\n/+=' >"$TLS_DIR/$name.password")
  fi
  chmod 600 "$TLS_DIR/$name.password"
}

up() {
  command -v openssl >/dev/null || apt_install openssl
  mkdir -p "$TLS_DIR"
  chmod 755 "$TLS_DIR"
  if ! valid "$TLS_DIR/ca.crt" || [ ! -s "$TLS_DIR/ca.key" ]; then
    log "generating the stack's CA in $TLS_DIR"
    openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$TLS_DIR/ca.key" -sha256 -days "$ca_days" \
      -subj "/O=cdcd local stack/CN=cdcd stack CA" -out "$TLS_DIR/ca.crt" 2>/dev/null
    chmod 600 "$TLS_DIR/ca.key"
    rm -f "$TLS_DIR/server.crt" "$TLS_DIR/client-cdcd_cert.crt"
  fi
  if ! valid "$TLS_DIR/server.crt" || ! signed_by_ca "$TLS_DIR/server.crt" || [ ! -s "$TLS_DIR/server.key" ]; then
    log "issuing the server certificate (localhost, 127.0.0.1, ::1)"
    issue server "/O=cdcd local stack/CN=localhost" \
      "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth"
  fi
  if ! valid "$TLS_DIR/client-cdcd_cert.crt" || ! signed_by_ca "$TLS_DIR/client-cdcd_cert.crt"; then
    log "issuing the PostgreSQL client certificate (CN=cdcd_cert)"
    issue client-cdcd_cert "/O=cdcd local stack/CN=cdcd_cert" \
      "keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  fi
  (umask 077 && cat "$TLS_DIR/server.key" "$TLS_DIR/server.crt" >"$TLS_DIR/server.pem.tmp")
  cmp -s "$TLS_DIR/server.pem.tmp" "$TLS_DIR/server.pem" 2>/dev/null && rm -f "$TLS_DIR/server.pem.tmp" ||
    mv "$TLS_DIR/server.pem.tmp" "$TLS_DIR/server.pem"
  secret kafka cdcd
  secret postgres cdcd_pw
  secret registry cdcd
  (
    umask 077
    cat >"$TLS_DIR/kafka-client.properties.tmp" <<EOF
security.protocol=SASL_SSL
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.crt
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$(cat "$TLS_DIR/kafka.user")" password="$(cat "$TLS_DIR/kafka.password")";
EOF
    mv "$TLS_DIR/kafka-client.properties.tmp" "$TLS_DIR/kafka-client.properties"
  )
  log "tls material ready in $TLS_DIR"
}

down() { :; } # nothing runs; the material stays for the next "up"

status() {
  if valid "$TLS_DIR/ca.crt" && valid "$TLS_DIR/server.crt" && signed_by_ca "$TLS_DIR/server.crt" &&
    [ -s "$TLS_DIR/kafka.password" ] && [ -s "$TLS_DIR/postgres.password" ] && [ -s "$TLS_DIR/registry.password" ]; then
    printf 'tls       ready  %s\n' "$TLS_DIR"
  else
    printf 'tls       missing (run make stack-up)\n'
    return 1
  fi
}

case "${1:-}" in
  up | down | status) "$1" ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac

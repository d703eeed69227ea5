#!/bin/sh
# One-shot of docker-compose.secure.yml (the es-certs service, in the Elasticsearch image,
# as root): makes the certificates of Elasticsearch's HTTP layer in the certs volume, once.
#
#   ca/ca.crt                          the certificate authority; public, for every client
#   ca/ca.key                          its private key, readable by root only
#   elasticsearch/elasticsearch.crt    Elasticsearch's HTTP certificate, signed by the CA, for
#   elasticsearch/elasticsearch.key    DNS elasticsearch and localhost and IP 127.0.0.1
#
# All PEM, made by the image's bin/elasticsearch-certutil. Files already there are kept, so
# clients that trust the CA keep working across restarts; delete the volume (or a file) to
# have them made again. A new CA always gets a new HTTP certificate signed by it.
#
# Reads CERTS_DIR (where the volume is mounted) and ES_HOME (the Elasticsearch installation,
# /usr/share/elasticsearch in the image).
set -eu

CERTS_DIR="${CERTS_DIR:-/certs}"
ES_HOME="${ES_HOME:-/usr/share/elasticsearch}"
CERTUTIL="$ES_HOME/bin/elasticsearch-certutil"
# Ten years: the certificates never leave this deployment, and newsflow's, Kibana's and
# curl's clients do not apply the browsers' limits on certificate lifetimes.
DAYS=3650
NAME=elasticsearch

die() {
    echo "certs.sh: $*" >&2
    exit 1
}

[ -x "$CERTUTIL" ] || die "no $CERTUTIL: run this in the Elasticsearch image"
command -v unzip > /dev/null || die "unzip is missing (the Elasticsearch image has it)"
[ -d "$CERTS_DIR" ] || die "no directory $CERTS_DIR: mount the certs volume there"

umask 077
# Made in a scratch directory and moved into place at the end, so that a failure half-way
# leaves nothing half-made for Elasticsearch to trip over.
work="$CERTS_DIR/.making"
rm -rf "$work"
mkdir "$work"
trap 'rm -rf "$work"' EXIT

if [ ! -s "$CERTS_DIR/ca/ca.crt" ] || [ ! -s "$CERTS_DIR/ca/ca.key" ]; then
    echo "certs.sh: making a certificate authority"
    "$CERTUTIL" ca --silent --pem --days "$DAYS" --out "$work/ca.zip" \
        || die "elasticsearch-certutil ca failed (see above)"
    unzip -q "$work/ca.zip" -d "$work" || die "cannot unpack the CA that certutil made"
    [ -s "$work/ca/ca.crt" ] && [ -s "$work/ca/ca.key" ] \
        || die "certutil's CA archive holds no ca/ca.crt and ca/ca.key"
    rm -rf "$CERTS_DIR/ca" "$CERTS_DIR/$NAME"
    mv "$work/ca" "$CERTS_DIR/ca"
fi

if [ ! -s "$CERTS_DIR/$NAME/$NAME.crt" ] || [ ! -s "$CERTS_DIR/$NAME/$NAME.key" ]; then
    echo "certs.sh: making Elasticsearch's HTTP certificate"
    # The names clients connect to: the service name inside the compose network, and the
    # loopback that the port is published on for the host.
    printf '%s\n' \
        "instances:" \
        "  - name: $NAME" \
        "    dns:" \
        "      - $NAME" \
        "      - localhost" \
        "    ip:" \
        "      - 127.0.0.1" > "$work/instances.yml"
    "$CERTUTIL" cert --silent --pem --days "$DAYS" --in "$work/instances.yml" \
        --ca-cert "$CERTS_DIR/ca/ca.crt" --ca-key "$CERTS_DIR/ca/ca.key" \
        --out "$work/http.zip" || die "elasticsearch-certutil cert failed (see above)"
    unzip -q "$work/http.zip" -d "$work" || die "cannot unpack the certificate that certutil made"
    [ -s "$work/$NAME/$NAME.crt" ] && [ -s "$work/$NAME/$NAME.key" ] \
        || die "certutil's archive holds no $NAME/$NAME.crt and $NAME/$NAME.key"
    rm -rf "${CERTS_DIR:?}/$NAME"
    mv "$work/$NAME" "$CERTS_DIR/$NAME"
fi

# Set on every run, so that a volume made by an older version of this script ends up the
# same. Elasticsearch runs as uid 1000 in group 0 (root), so group 0 gives it its key; the
# newsflow services mount the volume too, as another user: they read the CA certificate and
# nothing else. The CA key is root's alone: only this script uses it.
chown -R 0:0 "$CERTS_DIR/ca" "$CERTS_DIR/$NAME"
chmod 0755 "$CERTS_DIR" "$CERTS_DIR/ca"
chmod 0644 "$CERTS_DIR/ca/ca.crt"
chmod 0600 "$CERTS_DIR/ca/ca.key"
chmod 0750 "$CERTS_DIR/$NAME"
chmod 0640 "$CERTS_DIR/$NAME/$NAME.crt" "$CERTS_DIR/$NAME/$NAME.key"
echo "certs.sh: certificates ready in $CERTS_DIR (clients trust ca/ca.crt)"

#!/bin/sh
# One-shot of docker-compose.secure.yml (the es-api-key service, in the Elasticsearch image,
# as root): newsflow's Elasticsearch API key, in the encoded form clients send, in KEY_FILE.
#
# A key already in KEY_FILE is kept while it still authenticates (GET /_security/_authenticate
# with it), so restarts do not pile up keys; when Elasticsearch no longer knows it (HTTP 401:
# its data volume was removed, or the key was invalidated) the elastic user makes a new one
# (POST /_security/api_key) named newsflow, with what newsflow needs and nothing more: the
# cluster privileges monitor (health, at startup) and manage_index_templates (its index
# template), and every privilege on its indices and alias, INDEX_PREFIX-* (the topic prefix:
# <prefix>-articles-YYYY.MM and <prefix>-articles).
#
# KEY_FILE is mode 0640, owned by root and group KEY_GROUP, which the newsflow services get
# through group_add: readable by them and nobody else, whatever uid deploy/Dockerfile gives
# its user. Without KEY_GROUP it is 0600 (root's only). The key is never printed.
set -eu
. "$(dirname "$0")/lib.sh"

KEY_FILE="${KEY_FILE:-/secrets/es-api-key}"
KEY_GROUP="${KEY_GROUP:-}"
INDEX_PREFIX="${INDEX_PREFIX:-newsflow}"

# The group and mode above for KEY_FILE (the script runs as root: root owns it) and its folder.
protect() {
    if [ -n "$KEY_GROUP" ]; then
        chgrp "$KEY_GROUP" "$1" "$(dirname "$1")"
        chmod 0640 "$1"
        chmod 0750 "$(dirname "$1")"
    else
        chmod 0600 "$1"
    fi
}

stored=""
if [ -s "$KEY_FILE" ]; then
    stored="$(cat "$KEY_FILE")"
    case $stored in
        *[!A-Za-z0-9+/=]*)
            say "$KEY_FILE holds no encoded API key: making a new one"
            stored=""
            ;;
    esac
fi
if [ -n "$stored" ]; then
    es_retry GET /_security/_authenticate "$(api_key_auth "$stored")"
    case $STATUS in
        200)
            protect "$KEY_FILE"
            say "the API key in $KEY_FILE still authenticates: kept"
            exit 0
            ;;
        401) say "the API key in $KEY_FILE no longer authenticates (HTTP 401): making a new one" ;;
        *) die "Elasticsearch answered HTTP $STATUS to the API key in $KEY_FILE: $BODY" ;;
    esac
fi

require_secret ELASTIC_PASSWORD
request=$(printf '%s' \
    '{"name":"newsflow","role_descriptors":{"newsflow":{' \
    '"cluster":["monitor","manage_index_templates"],' \
    '"indices":[{"names":[' "$(json_string "$INDEX_PREFIX-*")" '],"privileges":["all"]}]' \
    '}}}')
es_retry POST /_security/api_key "$(basic_auth elastic "$ELASTIC_PASSWORD")" "$request"
case $STATUS in
    200) ;;
    401)
        die "Elasticsearch refused the elastic user's password (HTTP 401): check" \
            "ELASTIC_PASSWORD (it is the password the elasticsearch container was created" \
            "with, unless someone changed it through Elasticsearch's API since)"
        ;;
    *) die "Elasticsearch did not make the API key (HTTP $STATUS): $BODY" ;;
esac

# The answer is one line of JSON whose values here are base64 or plain names; "encoded" is
# base64 of id:api_key, what the Authorization: ApiKey header carries.
value_of() { printf '%s' "$BODY" | sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p"; }
encoded="$(value_of encoded)"
case $encoded in
    '' | *[!A-Za-z0-9+/=]*) die "Elasticsearch's answer holds no encoded API key" ;;
esac

# Written beside the old file and renamed over it, so that a newsflow service never reads
# half a key; umask keeps it private from the first byte.
tmp="$(dirname "$KEY_FILE")/.$(basename "$KEY_FILE").new"
(
    umask 077
    printf '%s\n' "$encoded" > "$tmp"
)
protect "$tmp"
mv -f "$tmp" "$KEY_FILE"
say "made the API key newsflow (id $(value_of id)) for the indices $INDEX_PREFIX-*, in $KEY_FILE"

#!/bin/sh
# Health check of the secured Elasticsearch (docker-compose.secure.yml runs it inside the
# elasticsearch container): healthy once the cluster is at least yellow, asked over https
# with the CA of the certs volume and the elastic user's password, which proves TLS and
# security up as well. Quiet when healthy; says why not otherwise (docker inspect shows it).
set -eu
ES_URL="${ES_URL:-https://localhost:9200}"
ES_CA_FILE="${ES_CA_FILE:-/usr/share/elasticsearch/config/certs/ca/ca.crt}"
# Within the health check's timeout (10 s in docker-compose.yml).
ES_MAX_TIME="${ES_MAX_TIME:-8}"
. "$(dirname "$0")/lib.sh"

require_secret ELASTIC_PASSWORD

es GET "/_cluster/health?wait_for_status=yellow&timeout=5s" \
    "$(basic_auth elastic "$ELASTIC_PASSWORD")" || die "no answer from $ES_URL"
[ "$STATUS" = 200 ] || die "$ES_URL answered HTTP $STATUS: $BODY"

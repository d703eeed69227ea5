#!/bin/sh
# One-shot of docker-compose.secure.yml (the kibana-password service): sets the password of
# Kibana's own user, kibana_system, to KIBANA_PASSWORD, as the elastic user. Kibana logs in
# with it; setting it again on every start is harmless, and makes a changed KIBANA_PASSWORD
# take effect.
set -eu
. "$(dirname "$0")/lib.sh"

require_secret ELASTIC_PASSWORD KIBANA_PASSWORD

es_retry POST /_security/user/kibana_system/_password \
    "$(basic_auth elastic "$ELASTIC_PASSWORD")" \
    "{\"password\":$(json_string "$KIBANA_PASSWORD")}"
case $STATUS in
    200) say "set the password of kibana_system" ;;
    401)
        die "Elasticsearch refused the elastic user's password (HTTP 401): check" \
            "ELASTIC_PASSWORD (it is the password the elasticsearch container was created" \
            "with, unless someone changed it through Elasticsearch's API since)"
        ;;
    *) die "Elasticsearch did not set the password of kibana_system (HTTP $STATUS): $BODY" ;;
esac

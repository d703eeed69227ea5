#!/bin/sh
# Imports newsflow's Kibana saved objects (newsflow.ndjson beside this script: the data view
# over the articles alias, the saved searches, the Lens charts and the overview dashboard)
# through Kibana's saved-objects import API, replacing the objects of the same ids.
#
# The kibana-setup service of docker-compose.yml runs it once Kibana is healthy; by hand:
#   KIBANA_URL=http://localhost:5601 sh deploy/kibana/import.sh
#
# A Kibana with security (docker-compose.secure.yml) asks who imports: KIBANA_USER and
# KIBANA_USER_PASSWORD give a user (basic auth), KIBANA_CA_FILE the CA of a Kibana served
# over https. Unset, the request is the same as ever. The password reaches curl in a config
# on its standard input, never on its command line, which any user of the host can read.
#
# Exits non-zero unless Kibana answers "success":true: when it cannot be reached, when it
# answers an HTTP error ({"statusCode":...}) and when it answers "success":false (objects
# it refused, listed under "errors"). Kibana's answer is printed either way. Needs only sh
# and long-standing curl options, so the curl of the Kibana image the service runs in does.
set -u

KIBANA_URL="${KIBANA_URL:-http://kibana:5601}"
ASSETS="${ASSETS:-$(dirname "$0")/newsflow.ndjson}"
KIBANA_USER="${KIBANA_USER:-}"
KIBANA_USER_PASSWORD="${KIBANA_USER_PASSWORD:-}"
KIBANA_CA_FILE="${KIBANA_CA_FILE:-}"

if [ -n "$KIBANA_USER" ] && [ -z "$KIBANA_USER_PASSWORD" ]; then
    echo "kibana-setup: KIBANA_USER is set but KIBANA_USER_PASSWORD is not: set both" >&2
    exit 1
fi
if [ -z "$KIBANA_USER" ] && [ -n "$KIBANA_USER_PASSWORD" ]; then
    echo "kibana-setup: KIBANA_USER_PASSWORD is set but KIBANA_USER is not: set both" >&2
    exit 1
fi
case "$KIBANA_USER:$KIBANA_USER_PASSWORD" in
    *[[:cntrl:]]*)
        echo "kibana-setup: KIBANA_USER or KIBANA_USER_PASSWORD holds a control character" >&2
        exit 1
        ;;
esac

set -- -sS --max-time 120 \
    -X POST "$KIBANA_URL/api/saved_objects/_import?overwrite=true" \
    -H "kbn-xsrf: newsflow" \
    --form "file=@$ASSETS"
if [ -n "$KIBANA_CA_FILE" ]; then
    set -- --cacert "$KIBANA_CA_FILE" "$@"
fi

# curl with the arguments given, and the user, if any, in a config on its standard input:
# `user = "name:password"`, backslashes and double quotes escaped as curl's config wants.
kibana() {
    if [ -n "$KIBANA_USER" ]; then
        printf 'user = "%s"\n' \
            "$(printf '%s' "$KIBANA_USER:$KIBANA_USER_PASSWORD" | sed 's/[\\"]/\\&/g')" \
            | curl -K - "$@"
    else
        curl "$@"
    fi
}

if ! answer=$(kibana "$@"); then
    echo "kibana-setup: the import request to $KIBANA_URL failed: $answer" >&2
    exit 1
fi
echo "$answer"
case "$answer" in
    *'"success":true'*) echo "kibana-setup: imported $ASSETS into $KIBANA_URL" ;;
    *)
        echo "kibana-setup: Kibana did not import $ASSETS (see its answer above)" >&2
        exit 1
        ;;
esac

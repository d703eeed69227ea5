#!/bin/sh
# Imports newsflow's Kibana saved objects (newsflow.ndjson beside this script: the data view
# over the articles alias, the saved searches, the Lens charts and the overview dashboard)
# through Kibana's saved-objects import API, replacing the objects of the same ids.
#
# The kibana-setup service of docker-compose.yml runs it once Kibana is healthy; by hand:
#   KIBANA_URL=http://localhost:5601 sh deploy/kibana/import.sh
#
# Exits non-zero unless Kibana answers "success":true: when it cannot be reached, when it
# answers an HTTP error ({"statusCode":...}) and when it answers "success":false (objects
# it refused, listed under "errors"). Kibana's answer is printed either way. Needs only sh
# and long-standing curl options, so the curl of the Kibana image the service runs in does.
set -u

KIBANA_URL="${KIBANA_URL:-http://kibana:5601}"
ASSETS="${ASSETS:-$(dirname "$0")/newsflow.ndjson}"

if ! answer=$(curl -sS --max-time 120 \
    -X POST "$KIBANA_URL/api/saved_objects/_import?overwrite=true" \
    -H "kbn-xsrf: newsflow" \
    --form "file=@$ASSETS"); then
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

#!/bin/sh
# Entrypoint of the newsflow services in docker-compose.secure.yml: reads the API key that
# the es-api-key service wrote into NEWSFLOW_ELASTICSEARCH_API_KEY (newsflow reads its
# settings from the environment only), then runs newsflow with the service's command as its
# arguments, as the image's own entrypoint would. ES_API_KEY_FILE says where the key is.
set -eu

key_file="${ES_API_KEY_FILE:-/secrets/es-api-key}"
if [ ! -r "$key_file" ]; then
    echo "newsflow.sh: cannot read the Elasticsearch API key $key_file (as $(id -un)):" \
        "the es-api-key service writes it; see its log (docker compose ... logs es-api-key)" >&2
    exit 1
fi
NEWSFLOW_ELASTICSEARCH_API_KEY="$(cat "$key_file")"
if [ -z "$NEWSFLOW_ELASTICSEARCH_API_KEY" ]; then
    echo "newsflow.sh: $key_file is empty: run the es-api-key service again" >&2
    exit 1
fi
export NEWSFLOW_ELASTICSEARCH_API_KEY
exec newsflow "$@"

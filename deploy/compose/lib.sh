# Shared by the scripts beside it, which source it: how they talk to Elasticsearch.
#
# Secrets (the elastic password, Kibana's password, the API key) reach curl in a config
# given on its standard input (-K -), never on its command line: the arguments of every
# process in a container are visible to every user of the Docker host (ps), its environment
# and stdin are not. Needs only sh, sed and curl, as the Elasticsearch image has them (it
# has no jq: the JSON that is parsed here is parsed with sed, for one known key at a time).
#
# Reads ES_URL (https://elasticsearch:9200), ES_CA_FILE (the CA of its HTTP certificate),
# ES_RETRIES and ES_RETRY_DELAY (how long to wait for an Elasticsearch that is starting) and
# ES_MAX_TIME (seconds a request may take).

ES_URL="${ES_URL:-https://elasticsearch:9200}"
ES_CA_FILE="${ES_CA_FILE:-/certs/ca/ca.crt}"
ES_RETRIES="${ES_RETRIES:-20}"
ES_RETRY_DELAY="${ES_RETRY_DELAY:-3}"
ES_MAX_TIME="${ES_MAX_TIME:-30}"
NL='
'

say() { echo "${0##*/}: $*"; }
die() {
    echo "${0##*/}: $*" >&2
    exit 1
}

# Fails unless each named variable is set and usable as a secret: not empty, and without
# control characters (line breaks would split curl's config, and JSON forbids them raw).
require_secret() {
    for _name in "$@"; do
        eval "_value=\${$_name:-}"
        [ -n "$_value" ] || die "$_name is not set: set it (see docker-compose.secure.yml)"
        case $_value in
            *[[:cntrl:]]*)
                die "$_name holds a control character (a line break, a tab...): choose another"
                ;;
        esac
    done
}

# The value with every backslash and double quote escaped by a backslash: the escaping of a
# JSON string and of a double-quoted string in a curl config alike.
escaped() { printf '%s' "$1" | sed 's/[\\"]/\\&/g'; }

# A curl config line giving an option's value in double quotes: `option = "value"`.
config_line() { printf '%s = "%s"\n' "$1" "$(escaped "$2")"; }

json_string() { printf '"%s"' "$(escaped "$1")"; }

basic_auth() { config_line user "$1:$2"; }
api_key_auth() { config_line header "Authorization: ApiKey $1"; }

# es METHOD PATH AUTH [BODY]: one request; AUTH is a config line of basic_auth or
# api_key_auth. Sets STATUS (000 when nothing answered) and BODY; returns non-zero only when
# Elasticsearch could not be reached.
es() {
    _out=$({
        printf '%s\n' "$3"
        [ -z "${4:-}" ] || config_line data-binary "$4"
    } | curl -sS --max-time "$ES_MAX_TIME" --cacert "$ES_CA_FILE" -K - -X "$1" \
        -H "Content-Type: application/json" -w "\n%{http_code}" "$ES_URL$2") || {
        STATUS=000
        BODY=""
        return 1
    }
    STATUS=${_out##*"$NL"}
    BODY=${_out%"$NL"*}
}

# es_retry METHOD PATH AUTH [BODY]: es, asked again while Elasticsearch cannot be reached or
# answers 503 (its security index can be briefly unavailable just after a start).
es_retry() {
    _try=1
    while :; do
        if es "$@" && [ "$STATUS" != 503 ]; then
            return 0
        fi
        [ "$_try" -lt "$ES_RETRIES" ] || break
        _try=$((_try + 1))
        sleep "$ES_RETRY_DELAY"
    done
    [ "$STATUS" = 503 ] && return 0
    die "no answer from Elasticsearch at $ES_URL after $ES_RETRIES tries (CA $ES_CA_FILE):" \
        "see curl's message above"
}

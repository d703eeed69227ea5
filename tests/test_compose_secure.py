"""docker-compose.secure.yml cannot run here (no Docker engine) either, so it is checked as
tests/test_compose.py checks docker-compose.yml: merged over docker-compose.yml the way
`docker compose -f docker-compose.yml -f docker-compose.secure.yml` merges them, it follows
the Compose Specification's schema, every service, file, volume and variable it names
exists, its passwords must be given, and Elasticsearch, Kibana and newsflow agree on where
the certificates are. The scripts of its one-shot services (deploy/compose/) run here, in
the services' environments, against stand-ins: a fake elasticsearch-certutil, and
Elasticsearch and Kibana served over TLS with a CA made by openssl."""

from __future__ import annotations

import base64
import fnmatch
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from click.testing import CliRunner

from deploy.stack.artifacts import pinned_versions
from newsflow.cli import cli
from newsflow.settings import Settings, StackSettings, env_names
from processors.index import alias
from tests import test_compose as base
from tests.conftest import ROOT

SECURE = ROOT / "docker-compose.secure.yml"
SCRIPTS = ROOT / "deploy" / "compose"
# The services the override adds: one-shots in the Elasticsearch image. A service added to
# docker-compose.secure.yml must be added here, and checked below.
ONE_SHOTS = {"es-certs", "kibana-password", "es-api-key"}
# Passwords with every character that quoting gets wrong: quotes, backslashes, dollars,
# spaces and colons (curl splits user:password at the first colon only).
ELASTIC_PASSWORD = "el\"as'tic \\pa$$w:rd"
KIBANA_PASSWORD = "k'ib\"ana\\ $HOME:pw"
SECRETS = {"ELASTIC_PASSWORD": ELASTIC_PASSWORD, "KIBANA_PASSWORD": KIBANA_PASSWORD}
# What newsflow's API key may do: the privileges newsflow.services names when it is refused.
KEY_PRIVILEGES: dict[str, Any] = {
    "cluster": ["monitor", "manage_index_templates"],
    "indices": [{"names": ["newsflow-*"], "privileges": ["all"]}],
}


# -- merging, as Compose merges -----------------------------------------------------------

# Sequences a later file replaces instead of extending (the specification's merge rules:
# command, entrypoint and healthcheck.test); volumes are merged by their mount target.
REPLACED = {"command", "entrypoint", "test"}


def merge(earlier: Any, later: Any, key: str | None = None) -> Any:
    if key == "environment":
        # Per variable, which needs the mapping form; both files use it.
        assert isinstance(earlier, dict) and isinstance(later, dict), "environment as a list"
    if isinstance(earlier, dict) and isinstance(later, dict):
        merged = dict(earlier)
        for k, v in later.items():
            merged[k] = merge(earlier[k], v, k) if k in earlier else v
        return merged
    if isinstance(earlier, list) and isinstance(later, list) and key not in REPLACED:
        if key == "volumes":
            by_target = {_target(v): v for v in earlier} | {_target(v): v for v in later}
            return list(by_target.values())
        return earlier + [v for v in later if v not in earlier]
    return later


def _target(volume: str) -> str:
    return volume.split(":")[1]


def test_merge_follows_the_compose_rules() -> None:
    earlier = {"environment": {"A": "1", "B": "2"}, "command": ["a"], "volumes": ["x:/t", "y:/u"]}
    later = {"environment": {"B": "3"}, "command": ["b"], "volumes": ["z:/t"], "group_add": ["9"]}
    assert merge(earlier, later) == {
        "environment": {"A": "1", "B": "3"},
        "command": ["b"],
        "volumes": ["z:/t", "y:/u"],
        "group_add": ["9"],
    }
    earlier = {"healthcheck": {"test": ["a"], "retries": 3}}
    later = {"healthcheck": {"test": ["b"]}}
    assert merge(earlier, later) == {"healthcheck": {"test": ["b"], "retries": 3}}


@pytest.fixture(scope="module")
def override() -> dict[str, Any]:
    data = yaml.safe_load(SECURE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def merged(override: dict[str, Any]) -> dict[str, Any]:
    data = merge(yaml.safe_load(base.COMPOSE.read_text()), override)
    assert isinstance(data, dict)
    return data


# -- interpolation, as Compose interpolates -----------------------------------------------


class MissingVariable(Exception):
    pass


_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """A compose value with ${VAR}, ${VAR:-default} and ${VAR:?message} filled in from
    ``env`` ($$ is a dollar); a missing required variable raises with its message."""
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.groups()
        given = env.get(name)
        empty = given is None or (op is not None and op.startswith(":") and not given)
        if op and op.endswith("?") and empty:
            raise MissingVariable(arg)
        if op and op.endswith("-") and empty:
            return arg
        return given or ""

    return _VARIABLE.sub(one, value)


# -- the file -----------------------------------------------------------------------------


def test_merged_file_follows_the_compose_specification(merged: dict[str, Any]) -> None:
    base.test_compose_file_follows_the_compose_specification(merged)


def test_services_added_and_depended_on_exist(
    merged: dict[str, Any], override: dict[str, Any]
) -> None:
    services = merged["services"]
    base_services = yaml.safe_load(base.COMPOSE.read_text())["services"]
    assert set(override["services"]) - set(base_services) == ONE_SHOTS
    assert "kafka" not in override["services"]  # internal to the compose network, as it was
    image = f"docker.elastic.co/elasticsearch/elasticsearch:{pinned_versions().elasticsearch}"
    for name in ONE_SHOTS:
        # One-shots: a failed setup stays failed, and says so, instead of looping.
        assert services[name]["image"] == image and services[name]["restart"] == "no"
    for name, service in services.items():
        for dep, how in service.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if how["condition"] == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} is not a one-shot"
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no health check"
    _assert_no_cycle(services)


def _assert_no_cycle(services: dict[str, Any]) -> None:
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"dependency cycle: {' -> '.join((*path, name))}"
        if name not in done:
            for dep in services[name].get("depends_on", {}):
                visit(dep, (*path, name))
            done.add(name)

    for name in services:
        visit(name, ())


def test_mounts_and_scripts_exist(merged: dict[str, Any]) -> None:
    for name, service in merged["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {volume}"
            else:
                assert source in merged["volumes"], f"{name}: {volume}"
        entrypoint = service.get("entrypoint", [])
        if entrypoint[:1] == ["/bin/sh"]:
            script = _locate(service, entrypoint[1], {})
            assert script is not None and script.is_file(), f"{name}: {entrypoint}"
        test = service.get("healthcheck", {}).get("test", [])
        if test[:2] == ["CMD", "/bin/sh"]:
            script = _locate(service, test[2], {})
            assert script is not None and script.is_file(), f"{name}: {test}"


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def test_the_passwords_must_be_given(override: dict[str, Any], merged: dict[str, Any]) -> None:
    uses = [s for s in _strings(override) if "PASSWORD" in s and "$" in s]
    assert uses
    for value in uses:
        m = re.fullmatch(r"\$\{(ELASTIC_PASSWORD|KIBANA_PASSWORD):\?(.+)\}", value)
        assert m, f"not ${{VAR:?message}}: {value}"
        assert f"set {m.group(1)}" in m.group(2)  # the message says what to do
    with pytest.raises(MissingVariable, match="set ELASTIC_PASSWORD"):
        interpolate(merged["services"]["elasticsearch"]["environment"]["ELASTIC_PASSWORD"], {})
    # Compose treats an empty value as missing too, with the colon form.
    with pytest.raises(MissingVariable, match="set KIBANA_PASSWORD"):
        env = merged["services"]["kibana"]["environment"]
        interpolate(env["ELASTICSEARCH_PASSWORD"], {"KIBANA_PASSWORD": ""})
    given = {
        ("elasticsearch", "ELASTIC_PASSWORD"): ELASTIC_PASSWORD,
        ("kibana", "ELASTICSEARCH_PASSWORD"): KIBANA_PASSWORD,
        ("kibana-password", "ELASTIC_PASSWORD"): ELASTIC_PASSWORD,
        ("kibana-password", "KIBANA_PASSWORD"): KIBANA_PASSWORD,
        ("kibana-setup", "KIBANA_USER_PASSWORD"): ELASTIC_PASSWORD,
        ("es-api-key", "ELASTIC_PASSWORD"): ELASTIC_PASSWORD,
    }
    for (name, variable), value in given.items():
        env = merged["services"][name]["environment"]
        assert interpolate(env[variable], SECRETS) == value, (name, variable)


def test_elasticsearch_runs_with_security_and_http_tls(merged: dict[str, Any]) -> None:
    es = merged["services"]["elasticsearch"]
    env = es["environment"]
    assert env["xpack.security.enabled"] == "true"
    assert env["xpack.security.http.ssl.enabled"] == "true"
    config = "/usr/share/elasticsearch/config"
    for setting, expected in (
        ("key", ("certs", "elasticsearch/elasticsearch.key")),
        ("certificate", ("certs", "elasticsearch/elasticsearch.crt")),
        ("certificate_authorities", ("certs", "ca/ca.crt")),
    ):
        path = env[f"xpack.security.http.ssl.{setting}"]
        assert _in_volume(es, f"{config}/{path}") == expected, setting
    assert "127.0.0.1:9200:9200" in es["ports"]  # still on the loopback only
    # The health check asks over https with the CA: its script's defaults must be them.
    assert es["healthcheck"]["test"] == ["CMD", "/bin/sh", "/compose/es-healthy.sh"]
    script = (SCRIPTS / "es-healthy.sh").read_text()
    assert re.search(r'ES_URL="\$\{ES_URL:-https://localhost:9200\}"', script)
    ca = re.search(r'ES_CA_FILE="\$\{ES_CA_FILE:-([^}]+)\}"', script)
    assert ca and _in_volume(es, ca.group(1)) == ("certs", "ca/ca.crt")


def test_kibana_logs_in_over_https_as_kibana_system(merged: dict[str, Any]) -> None:
    kibana = merged["services"]["kibana"]
    env = kibana["environment"]
    assert env["ELASTICSEARCH_HOSTS"] == "https://elasticsearch:9200"
    assert env["ELASTICSEARCH_USERNAME"] == "kibana_system"
    assert _in_volume(kibana, env["ELASTICSEARCH_SSL_CERTIFICATEAUTHORITIES"]) == (
        "certs",
        "ca/ca.crt",
    )
    assert kibana["depends_on"]["kibana-password"]["condition"] == "service_completed_successfully"
    assert "127.0.0.1:5601:5601" in kibana["ports"]  # plain http, so on the loopback only
    setup = merged["services"]["kibana-setup"]["environment"]
    assert setup["KIBANA_USER"] == "elastic" and setup["KIBANA_URL"] == "http://kibana:5601"


def test_one_shots_reach_elasticsearch_over_https_with_the_ca(merged: dict[str, Any]) -> None:
    for name in ("kibana-password", "es-api-key"):
        service = merged["services"][name]
        assert service["environment"]["ES_URL"] == "https://elasticsearch:9200"
        assert _in_volume(service, service["environment"]["ES_CA_FILE"]) == ("certs", "ca/ca.crt")
        assert service["depends_on"] == {"elasticsearch": {"condition": "service_healthy"}}


def test_newsflow_services_use_https_the_ca_and_the_api_key(
    merged: dict[str, Any], tmp_path: Path
) -> None:
    known = env_names(Settings, StackSettings)
    key = merged["services"]["es-api-key"]
    key_file = _in_volume(key, key["environment"]["KEY_FILE"])
    newsflow = base._newsflow_services(merged)
    assert set(newsflow) == {"setup", "worker", "ingest"}
    for name, service in merged["services"].items():
        env = service.get("environment", {})
        unknown = {k for k in env if k.startswith("NEWSFLOW_")} - known
        assert not unknown, f"{name} sets variables newsflow never reads: {unknown}"
    ca = tmp_path / "ca.crt"
    ca.write_text("a CA\n")
    for name, service in newsflow.items():
        env = service["environment"]
        assert env["NEWSFLOW_ELASTICSEARCH_URL"] == "https://elasticsearch:9200", name
        assert env["NEWSFLOW_KAFKA_BOOTSTRAP"] == "kafka:9092", name  # Kafka as it was
        assert _in_volume(service, env["NEWSFLOW_ELASTICSEARCH_CA_FILE"]) == ("certs", "ca/ca.crt")
        assert all(v.endswith(":ro") for v in service["volumes"] if v.startswith("certs:"))
        assert _in_volume(service, env["ES_API_KEY_FILE"]) == key_file, name
        assert key["environment"]["KEY_GROUP"] in service["group_add"], name
        assert service["depends_on"]["es-api-key"]["condition"] == "service_completed_successfully"
        # The values validate as the settings they name, once the wrapper has added the key.
        values = {k.removeprefix("NEWSFLOW_").lower(): base._unset(v) for k, v in env.items()}
        values = {k: v for k, v in values.items() if k in Settings.model_fields}
        settings = Settings.model_validate(
            values | {"elasticsearch_ca_file": ca, "elasticsearch_api_key": "a2V5OnNlY3JldA=="}
        )
        assert settings.elasticsearch_verify_certs and not settings.elasticsearch_fingerprint
    # Replicas still keep their state to themselves (tests/test_compose.py says why).
    worker = merged["services"]["worker"]
    state = worker["environment"].get("NEWSFLOW_STATE_DIR", "/var/lib/newsflow")
    assert not any(state.startswith(_target(v).rstrip("/") + "/") for v in worker["volumes"])
    assert not any(state == _target(v) for v in worker["volumes"])


def test_the_commands_are_still_newsflow_commands(merged: dict[str, Any]) -> None:
    runner = CliRunner()
    for name, service in base._newsflow_services(merged).items():
        assert service["entrypoint"] == ["/bin/sh", "/compose/newsflow.sh"], name
        result = runner.invoke(cli, [*service["command"], "--help"])
        assert result.exit_code == 0, f"{name}: newsflow {service['command']}: {result.output}"


def test_the_api_key_covers_the_compose_indices_and_no_others(merged: dict[str, Any]) -> None:
    prefix = merged["x-newsflow"]["environment"]["NEWSFLOW_TOPIC_PREFIX"]
    assert merged["services"]["es-api-key"]["environment"]["INDEX_PREFIX"] == prefix
    (pattern,) = KEY_PRIVILEGES["indices"][0]["names"]
    assert pattern == f"{prefix}-*"
    for index in (alias(prefix), f"{alias(prefix)}-2025.01"):
        assert fnmatch.fnmatchcase(index, pattern)
    assert not fnmatch.fnmatchcase(".security-7", pattern)


def test_the_scripts_parse_and_fail_early() -> None:
    scripts = [*sorted(SCRIPTS.glob("*.sh")), ROOT / "deploy" / "kibana" / "import.sh"]
    assert {p.name for p in scripts} >= {
        "lib.sh",
        "certs.sh",
        "es-healthy.sh",
        "kibana-password.sh",
        "api-key.sh",
        "newsflow.sh",
    }
    for script in scripts:
        for shell in ("sh", "bash"):
            if shutil.which(shell):
                subprocess.run([shell, "-n", str(script)], check=True)
        if script.parent == SCRIPTS and script.name != "lib.sh":  # lib.sh is sourced
            assert "\nset -eu\n" in script.read_text(), script


# -- where files are: container paths, bind mounts and volumes -----------------------------


def _locate(service: dict[str, Any], path: Any, volumes: dict[str, Path]) -> Path | None:
    """Where a path inside the service's container is here: in the repository for a bind
    mount, under ``volumes[name]`` for a named volume; None if no mount holds it."""
    if not isinstance(path, str) or not path.startswith("/"):
        return None
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if path == target or path.startswith(target.rstrip("/") + "/"):
            rest = path[len(target) :].lstrip("/")
            if source.startswith("."):
                return ROOT / source / rest
            return volumes[source] / rest if source in volumes else None
    return None


def _in_volume(service: dict[str, Any], path: str) -> tuple[str, str] | None:
    """The named volume holding a container path, and the path inside it."""
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if not source.startswith(".") and path.startswith(target.rstrip("/") + "/"):
            return source, path[len(target) :].lstrip("/")
    return None


@dataclass
class Ran:
    result: subprocess.CompletedProcess[str]
    curl_argv: str  # every command line the script gave curl

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr


def run_service(
    service: dict[str, Any],
    volumes: dict[str, Path],
    tmp_path: Path,
    env: dict[str, str] | None = None,
    argv: list[str] | None = None,
) -> Ran:
    """The service's entrypoint (or ``argv``) with its environment, as compose gives it with
    SECRETS set, container paths taken to the repository and to ``volumes``; curl is the
    real one, behind a wrapper that writes down its command lines."""
    if not Path("/usr/bin/curl").exists():
        pytest.skip("curl not installed at /usr/bin/curl")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "curl-argv.log"
    log.touch()
    wrapper = bin_dir / "curl"
    wrapper.write_text(
        '#!/bin/sh\nprintf \'%s\\n\' "$*" >> "$CURL_ARGV_LOG"\nexec /usr/bin/curl "$@"\n'
    )
    wrapper.chmod(0o755)
    environment = {}
    for name, value in service.get("environment", {}).items():
        value = interpolate(value, SECRETS)
        environment[name] = str(_locate(service, value, volumes) or value)
    environment |= {"PATH": f"{bin_dir}:/usr/bin:/bin", "CURL_ARGV_LOG": str(log)}
    environment |= env or {}
    command = argv or [str(_locate(service, a, volumes) or a) for a in service["entrypoint"]]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
    return Ran(result, log.read_text())


# -- stand-ins: a CA, and Elasticsearch's security API over TLS -----------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    other_ca: Path  # a CA that signed nothing here

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert, self.server_key)
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA and a certificate it signs for 127.0.0.1 and localhost, the stand-ins'."""
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("pki")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    new_key = ["-newkey", "rsa:2048", "-nodes"]
    for name in ("ca", "other-ca"):
        openssl(
            *("req", "-x509", *new_key, "-days", "2", "-subj", f"/CN=test {name}"),
            *("-keyout", f"{name}.key", "-out", f"{name}.crt"),
            *("-addext", "basicConstraints=critical,CA:TRUE"),
            *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
        )
    openssl(
        "req", *new_key, "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr"
    )
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    openssl(
        *("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key"),
        *("-CAcreateserial", "-days", "2", "-out", "server.crt", "-extfile", "server.ext"),
    )
    return Pki(d / "ca.crt", d / "server.crt", d / "server.key", d / "other-ca.crt")


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class StubServer(HTTPServer):
    """Answers every request with ``respond(request)`` (a status and a JSON body), over TLS
    when given a context; records the requests."""

    def __init__(self, respond: Callable[[Request], tuple[int, Any]], tls: ssl.SSLContext | None):
        super().__init__(("127.0.0.1", 0), _StubHandler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self.respond = respond
        self.requests: list[Request] = []

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that refuses the certificate ends the handshake: expected in tests


class _StubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StubServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
        )
        self.server.requests.append(request)
        status, answer = self.server.respond(request)
        data = json.dumps(answer, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Callable[..., StubServer]]:
    servers: list[StubServer] = []

    def start(
        respond: Callable[[Request], tuple[int, Any]], tls: ssl.SSLContext | None = None
    ) -> StubServer:
        server = StubServer(respond, tls)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


UNAUTHORIZED = {
    "error": {"type": "security_exception", "reason": "unable to authenticate user [elastic]"},
    "status": 401,
}


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class FakeSecurity:
    """Elasticsearch as the scripts see it: the elastic user's password, the API keys it
    made and still knows, kibana_system's password and the cluster's health."""

    def __init__(self, password: str = ELASTIC_PASSWORD) -> None:
        self.password = password
        self.keys: set[str] = set()
        self.kibana_password: str | None = None

    def make_key(self) -> str:
        raw = f"{secrets.token_urlsafe(15)}:{secrets.token_urlsafe(16)}"
        encoded = base64.b64encode(raw.encode()).decode()
        self.keys.add(encoded)
        return encoded

    def __call__(self, request: Request) -> tuple[int, Any]:
        auth = request.headers.get("authorization", "")
        if (request.method, request.path) == ("GET", "/_security/_authenticate"):
            if auth.removeprefix("ApiKey ") in self.keys:
                return 200, {"username": "elastic", "authentication_type": "api_key"}
            return 401, UNAUTHORIZED
        if auth != _basic("elastic", self.password):
            return 401, UNAUTHORIZED
        if (request.method, request.path) == ("POST", "/_security/api_key"):
            encoded = self.make_key()
            key_id, key = base64.b64decode(encoded).decode().split(":")
            name = request.json()["name"]
            return 200, {"id": key_id, "name": name, "api_key": key, "encoded": encoded}
        if (request.method, request.path) == ("POST", "/_security/user/kibana_system/_password"):
            self.kibana_password = request.json()["password"]
            return 200, {}
        if request.method == "GET" and request.path.startswith("/_cluster/health?"):
            return 200, {"cluster_name": "newsflow", "status": "green"}
        return 404, {"error": "no handler", "status": 404}


@pytest.fixture
def volumes(tmp_path: Path, pki: Pki) -> dict[str, Path]:
    """The named volumes, empty but for the CA certificate in certs (as es-certs leaves it;
    the stand-ins present a certificate it signed)."""
    made = {"certs": tmp_path / "volume-certs", "secrets": tmp_path / "volume-secrets"}
    for path in made.values():
        path.mkdir()
    (made["certs"] / "ca").mkdir()
    shutil.copy(pki.ca, made["certs"] / "ca" / "ca.crt")
    return made


def _as_root() -> bool:
    return os.geteuid() == 0


def run_api_key(merged: dict[str, Any], volumes: dict[str, Path], tmp_path: Path, url: str) -> Ran:
    env = {"ES_URL": url, "ES_RETRIES": "1"}
    if not _as_root():
        env["KEY_GROUP"] = ""  # no chgrp for a user; the key file is then 0600
    return run_service(merged["services"]["es-api-key"], volumes, tmp_path, env)


def _key_file(merged: dict[str, Any], volumes: dict[str, Path]) -> Path:
    service = merged["services"]["es-api-key"]
    path = _locate(service, service["environment"]["KEY_FILE"], volumes)
    assert path is not None
    return path


def _assert_no_secret_shown(ran: Ran, *hidden: str) -> None:
    for secret in (*hidden, ELASTIC_PASSWORD, KIBANA_PASSWORD):
        assert secret not in ran.curl_argv, "a secret on curl's command line"
        assert secret not in ran.output, "a secret in the script's output"


@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
def test_api_key_is_made_when_there_is_none(
    merged: dict[str, Any],
    volumes: dict[str, Path],
    tmp_path: Path,
    pki: Pki,
    serve: Callable[..., StubServer],
    shell: str,
) -> None:
    if not Path(shell).exists():
        pytest.skip(f"no {shell}")
    security = FakeSecurity()
    es = serve(security, pki.server_context())
    service = merged["services"]["es-api-key"]
    script = _locate(service, service["entrypoint"][1], volumes)
    env = {"ES_URL": es.url, "ES_RETRIES": "1"} | ({} if _as_root() else {"KEY_GROUP": ""})
    ran = run_service(service, volumes, tmp_path, env, argv=[shell, str(script)])
    assert ran.result.returncode == 0, ran.output
    ((request,),) = [es.requests]
    assert (request.method, request.path) == ("POST", "/_security/api_key")
    assert request.headers["authorization"] == _basic("elastic", ELASTIC_PASSWORD)
    assert request.json() == {"name": "newsflow", "role_descriptors": {"newsflow": KEY_PRIVILEGES}}
    (encoded,) = security.keys
    key_file = _key_file(merged, volumes)
    assert key_file.read_text() == encoded + "\n"  # the encoded value, nothing else
    assert [p.name for p in key_file.parent.iterdir()] == [key_file.name]
    mode = key_file.stat().st_mode & 0o777
    if _as_root():
        assert mode == 0o640 and key_file.stat().st_gid == int(service["environment"]["KEY_GROUP"])
        assert key_file.parent.stat().st_mode & 0o777 == 0o750
    else:
        assert mode == 0o600
    _assert_no_secret_shown(ran, encoded, base64.b64decode(encoded).decode().split(":")[1])


def test_api_key_is_kept_while_it_authenticates(
    merged: dict[str, Any],
    volumes: dict[str, Path],
    tmp_path: Path,
    pki: Pki,
    serve: Callable[..., StubServer],
) -> None:
    security = FakeSecurity()
    stored = security.make_key()
    key_file = _key_file(merged, volumes)
    key_file.write_text(stored + "\n")
    es = serve(security, pki.server_context())
    ran = run_api_key(merged, volumes, tmp_path, es.url)
    assert ran.result.returncode == 0, ran.output
    ((request,),) = [es.requests]  # no POST: no second key
    assert (request.method, request.path) == ("GET", "/_security/_authenticate")
    assert request.headers["authorization"] == f"ApiKey {stored}"
    assert key_file.read_text() == stored + "\n" and security.keys == {stored}
    _assert_no_secret_shown(ran, stored)


# A key Elasticsearch no longer knows (its data volume was removed, say) is asked about
# first; a file that holds no key at all is not sent anywhere.
STALE_KEY = base64.b64encode(b"gone-id:gone-key").decode()


@pytest.mark.parametrize(
    ("stored", "asked"),
    [(STALE_KEY, [("GET", "/_security/_authenticate")]), ("not a key", [])],
    ids=["refused", "garbage"],
)
def test_a_new_api_key_replaces_one_elasticsearch_refuses(
    merged: dict[str, Any],
    volumes: dict[str, Path],
    tmp_path: Path,
    pki: Pki,
    serve: Callable[..., StubServer],
    stored: str,
    asked: list[tuple[str, str]],
) -> None:
    security = FakeSecurity()
    key_file = _key_file(merged, volumes)
    key_file.write_text(stored + "\n")
    es = serve(security, pki.server_context())
    ran = run_api_key(merged, volumes, tmp_path, es.url)
    assert ran.result.returncode == 0, ran.output
    assert [(r.method, r.path) for r in es.requests] == [*asked, ("POST", "/_security/api_key")]
    (encoded,) = security.keys
    assert key_file.read_text() == encoded + "\n"
    assert "making a new one" in ran.output


def test_api_key_fails_clearly_when_the_elastic_password_is_refused(
    merged: dict[str, Any],
    volumes: dict[str, Path],
    tmp_path: Path,
    pki: Pki,
    serve: Callable[..., StubServer],
) -> None:
    es = serve(FakeSecurity(password="another password"), pki.server_context())
    ran = run_api_key(merged, volumes, tmp_path, es.url)
    assert ran.result.returncode != 0
    assert "refused the elastic user's password (HTTP 401)" in ran.result.stderr
    assert "ELASTIC_PASSWORD" in ran.result.stderr
    assert not _key_file(merged, volumes).exists()
    _assert_no_secret_shown(ran)


def test_api_key_refuses_a_server_the_ca_did_not_sign(
    merged: dict[str, Any],
    volumes: dict[str, Path],
    tmp_path: Path,
    pki: Pki,
    serve: Callable[..., StubServer],
) -> None:
    shutil.copy(pki.other_ca, volumes["certs"] / "ca" / "ca.crt")
    es = serve(FakeSecurity(), pki.server_context())
    ran = run_api_key(merged, volumes, tmp_path, es.url)
    assert ran.result.returncode != 0 and "no answer from Elasticsearch" in ran.result.stderr
    assert not es.requests and not _key_file(merged, volumes).exists()


def test_kibana_password_is_set_as_elastic(
    merged: dict[str, Any],
    volumes: dict[str, Path],
    tmp_path: Path,
    pki: Pki,
    serve: Callable[..., StubServer],
) -> None:
    security = FakeSecurity()
    es = serve(security, pki.server_context())
    service = merged["services"]["kibana-password"]
    ran = run_service(service, volumes, tmp_path, {"ES_URL": es.url, "ES_RETRIES": "1"})
    assert ran.result.returncode == 0, ran.output
    ((request,),) = [es.requests]
    assert request.headers["authorization"] == _basic("elastic", ELASTIC_PASSWORD)
    assert security.kibana_password == KIBANA_PASSWORD  # quotes, backslashes and all
    _assert_no_secret_shown(ran)

    es_refusing = serve(FakeSecurity(password="another password"), pki.server_context())
    ran = run_service(service, volumes, tmp_path, {"ES_URL": es_refusing.url, "ES_RETRIES": "1"})
    assert ran.result.returncode != 0 and "ELASTIC_PASSWORD" in ran.result.stderr


def test_elasticsearch_health_check_asks_with_the_ca_and_the_password(
    merged: dict[str, Any],
    volumes: dict[str, Path],
    tmp_path: Path,
    pki: Pki,
    serve: Callable[..., StubServer],
) -> None:
    service = merged["services"]["elasticsearch"]
    argv = [str(_locate(service, a, volumes) or a) for a in service["healthcheck"]["test"][1:]]
    ca = str(volumes["certs"] / "ca" / "ca.crt")
    healthy = serve(FakeSecurity(), pki.server_context())
    ran = run_service(service, volumes, tmp_path, {"ES_URL": healthy.url, "ES_CA_FILE": ca}, argv)
    assert ran.result.returncode == 0 and not ran.output, ran.output
    ((request,),) = [healthy.requests]
    assert request.path.startswith("/_cluster/health?wait_for_status=yellow")
    refusing = serve(FakeSecurity(password="another"), pki.server_context())
    ran = run_service(service, volumes, tmp_path, {"ES_URL": refusing.url, "ES_CA_FILE": ca}, argv)
    assert ran.result.returncode != 0 and "HTTP 401" in ran.result.stderr
    _assert_no_secret_shown(ran)


# -- the certificates ----------------------------------------------------------------------

# elasticsearch-certutil as far as certs.sh uses it: `ca --pem` writes a zip holding
# ca/ca.crt and ca/ca.key; `cert --pem --in instances.yml` one holding <name>/<name>.crt and
# .key for each instance. It writes down each call (and the instances file) in CERTUTIL_LOG.
FAKE_CERTUTIL = """\
import json, os, sys, zipfile
import yaml
args = sys.argv[1:]
options = dict(zip(args[1::2], args[2::2]))
instances = yaml.safe_load(open(options["--in"])) if "--in" in args else None
with open(os.environ["CERTUTIL_LOG"], "a") as log:
    log.write(json.dumps({"mode": args[0], "args": args, "instances": instances}) + "\\n")
names = ["ca"] if args[0] == "ca" else [i["name"] for i in instances["instances"]]
with zipfile.ZipFile(options["--out"], "w") as z:
    for name in names:
        z.writestr(f"{name}/{name}.crt", f"-----BEGIN CERTIFICATE-----\\n{name}\\n")
        z.writestr(f"{name}/{name}.key", f"-----BEGIN RSA PRIVATE KEY-----\\n{name}\\n")
"""


@dataclass
class CertsRun:
    """es-certs, run once in a fresh certs volume, and how to run it again."""

    volumes: dict[str, Path]
    log: Path  # the fake certutil's calls
    again: Callable[[], Ran]

    @property
    def certs(self) -> Path:
        return self.volumes["certs"]

    def calls(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def certs_run(merged: dict[str, Any], tmp_path: Path) -> CertsRun:
    if not _as_root():
        pytest.skip("certs.sh gives the files to root (uid 0), as the service runs it")
    if not shutil.which("unzip"):
        pytest.skip("unzip not installed (the Elasticsearch image has it)")
    es_home = tmp_path / "elasticsearch"
    (es_home / "bin").mkdir(parents=True)
    certutil = es_home / "bin" / "elasticsearch-certutil"
    certutil.write_text(f"#!{sys.executable}\n{FAKE_CERTUTIL}")
    certutil.chmod(0o755)
    volumes = {"certs": tmp_path / "volume-certs"}
    volumes["certs"].mkdir()
    log = tmp_path / "certutil.log"
    env = {"ES_HOME": str(es_home), "CERTUTIL_LOG": str(log)}

    def run() -> Ran:
        ran = run_service(merged["services"]["es-certs"], volumes, tmp_path, env)
        assert ran.result.returncode == 0, ran.output
        return ran

    run()
    return CertsRun(volumes, log, run)


def test_the_http_certificate_names_every_host_clients_use(
    merged: dict[str, Any], certs_run: CertsRun
) -> None:
    ca_call, cert_call = certs_run.calls()
    assert ca_call["mode"] == "ca" and "--pem" in ca_call["args"]
    assert cert_call["mode"] == "cert" and "--pem" in cert_call["args"]
    (instance,) = cert_call["instances"]["instances"]
    assert instance == {
        "name": "elasticsearch",
        "dns": ["elasticsearch", "localhost"],
        "ip": ["127.0.0.1"],
    }
    services = merged["services"]
    for url in (
        services["worker"]["environment"]["NEWSFLOW_ELASTICSEARCH_URL"],
        services["kibana"]["environment"]["ELASTICSEARCH_HOSTS"],
        services["es-api-key"]["environment"]["ES_URL"],
    ):
        assert urlsplit(url).hostname in instance["dns"], url
    assert "localhost" in instance["dns"] and "127.0.0.1" in instance["ip"]  # from the host


def test_the_certificates_are_where_their_users_look(
    merged: dict[str, Any], certs_run: CertsRun
) -> None:
    services, volumes = merged["services"], certs_run.volumes
    es = services["elasticsearch"]
    config = "/usr/share/elasticsearch/config"
    for setting in ("key", "certificate", "certificate_authorities"):
        path = es["environment"][f"xpack.security.http.ssl.{setting}"]
        assert (_locate(es, f"{config}/{path}", volumes) or Path("-")).is_file(), setting
    for name, variable in (
        ("kibana", "ELASTICSEARCH_SSL_CERTIFICATEAUTHORITIES"),
        ("worker", "NEWSFLOW_ELASTICSEARCH_CA_FILE"),
        ("kibana-password", "ES_CA_FILE"),
        ("es-api-key", "ES_CA_FILE"),
    ):
        located = _locate(services[name], services[name]["environment"][variable], volumes)
        assert located == certs_run.certs / "ca" / "ca.crt" and located.is_file(), name


def test_the_certificates_are_readable_by_whom_they_are_for(certs_run: CertsRun) -> None:
    """Public: the CA certificate; Elasticsearch's (uid 1000, group 0): its key; root's:
    the CA key. Nothing of the scratch directory is left."""
    certs = certs_run.certs

    def mode(relative: str) -> int:
        return (certs / relative).stat().st_mode & 0o777

    assert mode("ca/ca.crt") == 0o644 and mode("ca/ca.key") == 0o600
    assert mode("elasticsearch") == 0o750 and mode("elasticsearch/elasticsearch.key") == 0o640
    assert {p.name for p in certs.iterdir()} == {"ca", "elasticsearch"}
    assert all(p.stat().st_uid == 0 and p.stat().st_gid == 0 for p in certs.rglob("*"))


def test_the_certificates_are_made_once(certs_run: CertsRun) -> None:
    certs = certs_run.certs
    before = {p: p.read_bytes() for p in certs.rglob("*") if p.is_file()}
    certs_run.again()
    assert len(certs_run.calls()) == 2  # certutil is not asked again
    assert {p: p.read_bytes() for p in certs.rglob("*") if p.is_file()} == before
    # A lost HTTP key is made again, signed by the CA that is there.
    (certs / "elasticsearch" / "elasticsearch.key").unlink()
    certs_run.again()
    last = certs_run.calls()[-1]
    assert last["mode"] == "cert"
    ca_cert = last["args"][last["args"].index("--ca-cert") + 1]
    assert Path(ca_cert).read_bytes() == before[certs / "ca" / "ca.crt"]


# -- the newsflow services' entrypoint -------------------------------------------------------


def test_newsflow_gets_the_api_key_and_its_command(
    merged: dict[str, Any], volumes: dict[str, Path], tmp_path: Path
) -> None:
    worker = merged["services"]["worker"]
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "newsflow"
    fake.write_text('#!/bin/sh\nprintf \'%s\\n\' "$NEWSFLOW_ELASTICSEARCH_API_KEY" "$@" > "$OUT"\n')
    fake.chmod(0o755)
    out = tmp_path / "out"
    key = base64.b64encode(b"id:key").decode()
    key_file = _locate(worker, worker["environment"]["ES_API_KEY_FILE"], volumes)
    assert key_file is not None
    key_file.write_text(key + "\n")
    argv = [str(_locate(worker, a, volumes) or a) for a in worker["entrypoint"]]
    ran = run_service(worker, volumes, tmp_path, {"OUT": str(out)}, [*argv, *worker["command"]])
    assert ran.result.returncode == 0, ran.output
    assert out.read_text().splitlines() == [key, *worker["command"]]

    key_file.unlink()
    ran = run_service(worker, volumes, tmp_path, {"OUT": str(out)}, [*argv, *worker["command"]])
    assert ran.result.returncode == 1 and "es-api-key" in ran.result.stderr


# -- kibana-setup, now with a user ----------------------------------------------------------


def _kibana_ok(request: Request) -> tuple[int, Any]:
    if request.headers.get("authorization") != _basic("elastic", ELASTIC_PASSWORD):
        return 401, {"statusCode": 401, "error": "Unauthorized", "message": "Unauthorized"}
    return 200, base.OK


def test_kibana_setup_imports_as_elastic(
    merged: dict[str, Any], tmp_path: Path, serve: Callable[..., StubServer]
) -> None:
    kibana = serve(_kibana_ok)
    setup = merged["services"]["kibana-setup"]
    ran = run_service(setup, {}, tmp_path, {"KIBANA_URL": kibana.url})
    assert ran.result.returncode == 0, ran.output
    ((request,),) = [kibana.requests]
    assert (request.method, request.path) == ("POST", "/api/saved_objects/_import?overwrite=true")
    assert request.headers["authorization"] == _basic("elastic", ELASTIC_PASSWORD)
    assert b'filename="newsflow.ndjson"' in request.body
    _assert_no_secret_shown(ran)


def test_import_sh_trusts_the_ca_it_is_given(
    tmp_path: Path, pki: Pki, serve: Callable[..., StubServer]
) -> None:
    kibana = serve(_kibana_ok, pki.server_context())
    script = ROOT / "deploy" / "kibana" / "import.sh"
    user = {"KIBANA_USER": "elastic", "KIBANA_USER_PASSWORD": ELASTIC_PASSWORD}
    env = {"KIBANA_URL": kibana.url, **user}
    untrusted = run_service({}, {}, tmp_path, env, ["/bin/sh", str(script)])
    assert untrusted.result.returncode == 1 and "failed" in untrusted.result.stderr
    env["KIBANA_CA_FILE"] = str(pki.ca)
    ran = run_service({}, {}, tmp_path, env, ["/bin/sh", str(script)])
    assert ran.result.returncode == 0, ran.output
    assert len(kibana.requests) == 1
    # Half a user is refused before anything is sent.
    del env["KIBANA_USER"]
    half = run_service({}, {}, tmp_path, env, ["/bin/sh", str(script)])
    assert half.result.returncode == 1 and "set both" in half.result.stderr
    assert len(kibana.requests) == 1

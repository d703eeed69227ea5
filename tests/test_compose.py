"""docker-compose.yml cannot run here (no Docker engine), so it is checked as far as these
machines allow: it follows the Compose Specification's schema, every service, image, build
file and variable it names exists, its images are the versions the local stack pins, its
servers are configured like the local stack's, every newsflow command it runs is a real
command of the CLI, and the one-shot kibana-setup imports deploy/kibana/ (its script is run
here against a stand-in for Kibana's import API)."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from deploy.stack.artifacts import pinned_versions
from deploy.stack.elasticsearch import ElasticsearchNode
from deploy.stack.kafka import KafkaNode
from newsflow.cli import cli
from newsflow.settings import Settings, StackSettings, env_names
from processors.index import alias
from tests.conftest import ROOT, shared_data_path

COMPOSE = ROOT / "docker-compose.yml"
# The services besides newsflow's own (those built from deploy/Dockerfile); a service added
# to docker-compose.yml must be added here, and checked below.
SERVERS = {"kafka", "elasticsearch", "kibana", "kibana-setup"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _newsflow_services(compose: dict[str, Any]) -> dict[str, Any]:
    return {n: s for n, s in compose["services"].items() if "build" in s}


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")
    return {k.strip(): v.strip() for k, v in pairs}


def _host_path(service: dict[str, Any], container_path: str) -> Path | None:
    """Where a path inside the service's container is in the repository (through its bind
    mounts), or None if no bind mount holds it."""
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith(".") and (container_path + "/").startswith(target.rstrip("/") + "/"):
            return ROOT / source / container_path[len(target) :].lstrip("/")
    return None


def test_services_present(compose: dict[str, Any]) -> None:
    newsflow = _newsflow_services(compose)
    assert newsflow, "no newsflow service built from deploy/Dockerfile"
    assert set(compose["services"]) - set(newsflow) == SERVERS


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    from jsonschema import validators

    schema = json.loads(shared_data_path("compose-spec", "compose-spec.json").read_text())
    # The specification names its draft (draft-07) by an https URI; jsonschema knows each
    # draft's meta-schema by its http URI, and would fall back to the newest draft.
    uri = schema["$schema"].replace("https://", "http://", 1).rstrip("#") + "#"
    validator = validators.validator_for({"$schema": uri}, default=None)
    assert validator is not None, f"no validator for the schema's draft {schema['$schema']}"
    validator.check_schema(schema)
    errors = sorted(validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_images_pinned_to_the_local_stack_versions(compose: dict[str, Any]) -> None:
    versions = pinned_versions()
    kibana = f"docker.elastic.co/kibana/kibana:{versions.elasticsearch}"
    expected = {
        "kafka": f"apache/kafka:{versions.kafka}",
        "elasticsearch": f"docker.elastic.co/elasticsearch/elasticsearch:{versions.elasticsearch}",
        "kibana": kibana,
        "kibana-setup": kibana,  # the image Kibana runs in already has curl
    }
    for name, image in expected.items():
        assert compose["services"][name]["image"] == image


def test_dockerfile_base_image_pinned() -> None:
    dockerfile = ROOT / "deploy" / "Dockerfile"
    froms = [
        line.split()[1] for line in dockerfile.read_text().splitlines() if line.startswith("FROM")
    ]
    assert froms and all(":" in f and not f.endswith(":latest") for f in froms)


def test_build_contexts_and_dependencies_exist(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dep in service.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"
        if "build" in service:
            build = service["build"]
            assert (ROOT / build["context"] / build["dockerfile"]).is_file()
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):  # a bind mount of a file or folder the repository has
                assert (ROOT / source).exists(), volume
            else:
                assert source in compose.get("volumes", {}), volume


def test_worker_replicas_never_share_a_state_directory(compose: dict[str, Any]) -> None:
    """`--scale worker=N` runs N copies of the service: a volume at the state directory
    would be one directory for all of them, and RocksDB state must be a worker's own."""
    worker = compose["services"]["worker"]
    state = worker["environment"].get("NEWSFLOW_STATE_DIR", "/var/lib/newsflow")
    targets = [v.split(":")[1] for v in worker.get("volumes", [])]
    assert not any(state == t or state.startswith(t.rstrip("/") + "/") for t in targets)
    assert "container_name" not in worker  # a fixed name forbids scaling


def test_newsflow_variables_are_settings_the_code_reads(compose: dict[str, Any]) -> None:
    known = env_names(Settings, StackSettings)
    for name, service in _newsflow_services(compose).items():
        env = service["environment"]
        unknown = {k for k in env if k.startswith("NEWSFLOW_")} - known
        assert not unknown, f"{name} sets variables newsflow never reads: {unknown}"
        # Where the services are must be said, not left to the loopback defaults.
        assert env["NEWSFLOW_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["NEWSFLOW_ELASTICSEARCH_URL"] == "http://elasticsearch:9200"
        # Every value must validate as the setting it names, as compose gives it with
        # nothing set in the environment (${VAR:-default} is the default).
        Settings.model_validate(
            {k.removeprefix("NEWSFLOW_").lower(): _unset(v) for k, v in env.items()}
        )


def _unset(value: Any) -> Any:
    """A compose value interpolated from an empty environment."""
    if not isinstance(value, str):
        return value
    return re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)


def test_dockerfile_variables_are_settings() -> None:
    known = env_names(Settings, StackSettings)
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    named = {w.split("=")[0] for w in text.split() if w.startswith("NEWSFLOW_")}
    assert named <= known


def test_kafka_configured_like_the_local_stack(compose: dict[str, Any]) -> None:
    local = _properties(KafkaNode(StackSettings()).server_properties())
    env = compose["services"]["kafka"]["environment"]
    compared = 0
    for key, value in env.items():
        prop = key.removeprefix("KAFKA_").lower().replace("_", ".")
        # Addresses differ by design (container names vs 127.0.0.1); settings must not.
        if prop in local and "listeners" not in prop and "voters" not in prop:
            assert str(value) == local[prop], f"{key}={value} but local {prop}={local[prop]}"
            compared += 1
    assert compared >= 10


def test_elasticsearch_configured_like_the_local_stack(compose: dict[str, Any]) -> None:
    yml = ElasticsearchNode(StackSettings()).elasticsearch_yml(ROOT)
    local = dict(
        line.split(": ", 1) for line in yml.splitlines() if ": " in line and line[0] != "#"
    )
    env = compose["services"]["elasticsearch"]["environment"]
    for key in (
        "cluster.name",
        "discovery.type",
        "xpack.security.enabled",
        "cluster.routing.allocation.disk.threshold_enabled",
    ):
        assert str(env[key]) == local[key], key


def test_the_example_sources_file_is_valid() -> None:
    from ingest.sources import load

    assert load(ROOT / "deploy" / "sources.example.yaml").endpoints()


def test_every_command_is_a_real_cli_command(compose: dict[str, Any]) -> None:
    runner = CliRunner()
    for name, service in _newsflow_services(compose).items():
        command = service.get("command", [])
        result = runner.invoke(cli, [*command, "--help"])
        assert result.exit_code == 0, f"{name}: newsflow {' '.join(command)}: {result.output}"


def test_kibana_setup_waits_for_a_healthy_kibana(compose: dict[str, Any]) -> None:
    kibana, setup = compose["services"]["kibana"], compose["services"]["kibana-setup"]
    test = " ".join(kibana["healthcheck"]["test"])
    assert "localhost:5601/api/status" in test and '"level":"available"' in test
    assert setup["depends_on"] == {"kibana": {"condition": "service_healthy"}}
    assert setup["restart"] == "no"  # one-shot: a failed import stays failed, and says so
    assert setup["environment"]["KIBANA_URL"] == "http://kibana:5601"
    assert setup["volumes"] == ["./deploy/kibana:/kibana-setup:ro"]


def test_kibana_setup_runs_the_repository_s_script_on_its_assets(compose: dict[str, Any]) -> None:
    setup = compose["services"]["kibana-setup"]
    shell, script = setup["entrypoint"]
    assert shell == "/bin/sh" and "command" not in setup
    assert _host_path(setup, script) == ROOT / "deploy" / "kibana" / "import.sh"
    assets = _host_path(setup, setup["environment"]["ASSETS"])
    assert assets == ROOT / "deploy" / "kibana" / "newsflow.ndjson" and assets.is_file()
    subprocess.run(["sh", "-n", str(_host_path(setup, script))], check=True)  # it parses


def test_the_data_view_names_the_alias_of_the_compose_prefix(compose: dict[str, Any]) -> None:
    prefix = compose["x-newsflow"]["environment"]["NEWSFLOW_TOPIC_PREFIX"]
    assets = ROOT / "deploy" / "kibana" / "newsflow.ndjson"
    views = [
        o for o in map(json.loads, assets.read_text().splitlines()) if o["type"] == "index-pattern"
    ]
    assert [v["attributes"]["title"] for v in views] == [alias(prefix)]


class _StubKibana(HTTPServer):
    """Kibana's import endpoint as far as the script sees it: records each request and gives
    the answer it is set to."""

    def __init__(self, status: int, answer: dict[str, Any]) -> None:
        super().__init__(("127.0.0.1", 0), _StubHandler)
        self.status, self.answer = status, answer
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _StubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # answers curl's "Expect: 100-continue" at once
    server: _StubKibana

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.requests.append((self.command, self.path, headers, body))
        data = json.dumps(self.server.answer, separators=(",", ":")).encode()  # as Kibana does
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stub_kibana(request: pytest.FixtureRequest) -> Iterator[_StubKibana]:
    server = _StubKibana(*request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _run_kibana_setup(compose: dict[str, Any], kibana_url: str) -> subprocess.CompletedProcess[str]:
    """The kibana-setup service's entrypoint and environment, paths taken to the repository
    and Kibana's URL to ``kibana_url``."""
    setup = compose["services"]["kibana-setup"]
    argv = [str(_host_path(setup, arg) or arg) for arg in setup["entrypoint"]]
    env = {k: str(_host_path(setup, v) or v) for k, v in setup["environment"].items()}
    env |= {"KIBANA_URL": kibana_url, "PATH": "/usr/bin:/bin"}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


OK = {"successCount": 12, "success": True, "warnings": [], "successResults": []}
REFUSED = {
    "successCount": 11,
    "success": False,
    "warnings": [],
    "errors": [{"id": "newsflow-overview", "type": "dashboard", "error": {"type": "unknown"}}],
}
HTTP_ERROR = {"statusCode": 415, "error": "Unsupported Media Type", "message": "bad file"}


@pytest.mark.parametrize(
    ("stub_kibana", "exit_code"),
    [((200, OK), 0), ((200, REFUSED), 1), ((415, HTTP_ERROR), 1)],
    indirect=["stub_kibana"],
    ids=["imported", "refused", "http-error"],
)
def test_kibana_setup_fails_unless_kibana_imports_everything(
    compose: dict[str, Any], stub_kibana: _StubKibana, exit_code: int
) -> None:
    if not Path("/usr/bin/curl").exists():
        pytest.skip("curl not installed at /usr/bin/curl")
    result = _run_kibana_setup(compose, stub_kibana.url)
    assert result.returncode == exit_code, result.stdout + result.stderr
    assert json.dumps(stub_kibana.answer, separators=(",", ":")) in result.stdout
    ((method, path, headers, body),) = stub_kibana.requests
    assert (method, path) == ("POST", "/api/saved_objects/_import?overwrite=true")
    assert "kbn-xsrf" in headers and headers["content-type"].startswith("multipart/form-data")
    assets = (ROOT / "deploy" / "kibana" / "newsflow.ndjson").read_bytes()
    assert b'name="file"; filename="newsflow.ndjson"' in body and assets in body


def test_kibana_setup_fails_when_kibana_cannot_be_reached(compose: dict[str, Any]) -> None:
    if not Path("/usr/bin/curl").exists():
        pytest.skip("curl not installed at /usr/bin/curl")
    with HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]  # bound, then closed: nothing listens there
    result = _run_kibana_setup(compose, f"http://127.0.0.1:{port}")
    assert result.returncode != 0 and "failed" in result.stderr

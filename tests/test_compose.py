"""docker-compose.yml cannot run here (no Docker engine), so it is checked as far as these
machines allow: it parses, every service, image, build file and variable it names exists,
its images are the versions the local stack pins, its servers are configured like the local
stack's, and every newsflow command it runs is a real command of the CLI."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from deploy.stack.artifacts import pinned_versions
from deploy.stack.elasticsearch import ElasticsearchNode
from deploy.stack.kafka import KafkaNode
from newsflow.cli import cli
from newsflow.settings import Settings, StackSettings, env_names
from tests.conftest import ROOT

COMPOSE = ROOT / "docker-compose.yml"


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


def test_services_present(compose: dict[str, Any]) -> None:
    assert {"kafka", "elasticsearch", "kibana"} <= set(compose["services"])
    assert _newsflow_services(compose), "no newsflow service built from deploy/Dockerfile"


def test_images_pinned_to_the_local_stack_versions(compose: dict[str, Any]) -> None:
    versions = pinned_versions()
    expected = {
        "kafka": f"apache/kafka:{versions.kafka}",
        "elasticsearch": f"docker.elastic.co/elasticsearch/elasticsearch:{versions.elasticsearch}",
        "kibana": f"docker.elastic.co/kibana/kibana:{versions.elasticsearch}",
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
            if source.startswith("."):  # a bind mount of a file the repository has
                assert (ROOT / source).is_file(), volume
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
        # Every value must validate as the setting it names.
        Settings.model_validate({k.removeprefix("NEWSFLOW_").lower(): v for k, v in env.items()})


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

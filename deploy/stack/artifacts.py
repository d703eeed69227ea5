"""Kafka and Elasticsearch from Maven Central, resolved through ``deploy/stack/pom.xml``.

Maven's local repository is the download cache; what newsflow keeps in the stack directory
is the resolved classpath (a text file) and the unpacked Elasticsearch distribution, both
redone only when the pom changes.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path

from deploy.stack.errors import StackError

log = logging.getLogger(__name__)

POM = Path(__file__).with_name("pom.xml")
_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


@dataclass(frozen=True)
class Versions:
    kafka: str
    elasticsearch: str


def pinned_versions(pom: Path = POM) -> Versions:
    """The versions the pom pins: the single place they are declared."""
    props = ET.parse(pom).getroot().find("m:properties", _NS)  # noqa: S314 (our own file)
    if props is None:
        raise StackError(f"{pom} has no <properties>")

    def prop(name: str) -> str:
        node = props.find(f"m:{name}", _NS)
        if node is None or not (node.text or "").strip():
            raise StackError(f"{pom} does not pin {name}")
        return (node.text or "").strip()

    return Versions(kafka=prop("kafka.version"), elasticsearch=prop("elasticsearch.version"))


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()[:16]


def _mvn(*args: str) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            "Maven (mvn) is not on PATH; newsflow fetches Kafka and Elasticsearch with it",
            "install it: apt-get install maven (or your platform's package)",
        )
    cmd = [mvn, "-B", "-q", "-f", str(POM), *args]
    log.info("resolving artifacts: %s", " ".join(cmd[1:]))
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise StackError(
            f"Maven could not resolve the stack's artifacts:\n{tail}",
            "check that Maven Central is reachable (or a mirror is set in ~/.m2/settings.xml)",
        )


def _resolved(cache: Path, what: str, *mvn_args: str) -> str:
    """Output of ``dependency:build-classpath`` for ``mvn_args``, cached per pom digest."""
    out = cache / f"{what}.{_pom_digest()}.txt"
    if not out.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        _mvn("dependency:build-classpath", f"-Dmdep.outputFile={tmp}", *mvn_args)
        tmp.replace(out)
    return out.read_text().strip()


def kafka_classpath(cache: Path) -> str:
    """The broker's runtime classpath: jars in Maven's local repository, ':'-joined."""
    return _resolved(cache, "kafka-classpath", "-Dmdep.includeScope=runtime", "-DexcludeTypes=zip")


def elasticsearch_home(cache: Path, into: Path) -> Path:
    """The Elasticsearch distribution unpacked under ``into``; unpacked once per version."""
    version = pinned_versions().elasticsearch
    home = into / f"elasticsearch-{version}"
    if (home / "bin" / "elasticsearch").is_file():
        return home
    zip_path = Path(_resolved(cache, "elasticsearch-zip", "-DincludeTypes=zip"))
    log.info("unpacking %s", zip_path.name)
    tmp = into / f".unpacking-{version}"
    shutil.rmtree(tmp, ignore_errors=True)
    _unzip_with_modes(zip_path, tmp)
    (tmp / home.name).rename(home)
    tmp.rmdir()
    return home


def _unzip_with_modes(zip_path: Path, dest: Path) -> None:
    # zipfile drops Unix permissions; bin/elasticsearch and its helpers must stay executable.
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            target = Path(archive.extract(info, dest))
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                target.chmod(mode)

"""Finding a JDK of a given major version: Kafka 4 needs 17, Elasticsearch 9 needs 21."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from deploy.stack.errors import StackError

JVM_ROOT = Path("/usr/lib/jvm")


@dataclass(frozen=True)
class Jdk:
    home: Path
    major: int

    @property
    def java(self) -> Path:
        return self.home / "bin" / "java"


def jdk_at(home: Path) -> Jdk | None:
    """The JDK installed at ``home``, read from its ``release`` file, or None."""
    release = home / "release"
    if not (home / "bin" / "java").is_file() or not release.is_file():
        return None
    match = re.search(r'^JAVA_VERSION="(\d+)', release.read_text(errors="replace"), re.M)
    return Jdk(home.resolve(), int(match.group(1))) if match else None


def _candidates() -> list[Path]:
    homes = []
    on_path = shutil.which("java")
    if on_path:
        # /usr/bin/java -> /etc/alternatives/java -> <home>/bin/java
        homes.append(Path(on_path).resolve().parent.parent)
    if JVM_ROOT.is_dir():
        homes.extend(sorted(p for p in JVM_ROOT.iterdir() if p.is_dir()))
    return homes


def find_jdk(minimum: int, explicit: Path | None, purpose: str, env_var: str) -> Jdk:
    """The explicit JDK if given (it must be new enough), else the java on PATH if it is new
    enough, else the newest one under /usr/lib/jvm that is."""
    if explicit is not None:
        jdk = jdk_at(explicit)
        if jdk is None or jdk.major < minimum:
            raise StackError(
                f"{env_var}={explicit} is not a JDK >= {minimum}",
                f"point {env_var} at a JDK {minimum} or newer, or unset it to search /usr/lib/jvm",
            )
        return jdk
    found = [j for j in (jdk_at(h) for h in _candidates()) if j is not None]
    suitable = [j for j in found if j.major >= minimum]
    if not suitable:
        seen = ", ".join(f"{j.home} ({j.major})" for j in found) or "none"
        raise StackError(
            f"{purpose} needs a JDK >= {minimum}; found: {seen}",
            f"install one (for example Temurin {minimum} or newer) and set {env_var}",
        )
    # Keep the PATH's java when it qualifies: it is what the user expects to run.
    return suitable[0] if suitable[0] == found[0] else max(suitable, key=lambda j: j.major)

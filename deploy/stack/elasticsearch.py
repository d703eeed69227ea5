"""One Elasticsearch node on 127.0.0.1, run unprivileged: security off (loopback only), or
secured (TLS, a superuser, newsflow's API key: deploy/stack/es_security.py).

Elasticsearch refuses to run as root. When newsflow runs as root it starts the node as
``StackSettings.es_user`` (a system user it creates if missing). That user must be able to
reach the node's directories; a stack directory under /root is not reachable, so the node's
files then live under /var/tmp/newsflow-es/ and the stack directory links to them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pwd
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from deploy.stack import artifacts, es_analysis, es_security
from deploy.stack.errors import StackError
from deploy.stack.java import Jdk, find_jdk
from deploy.stack.process import port_open, read_pid, start_detached
from deploy.stack.secure import SecureFiles
from newsflow.settings import StackSettings

log = logging.getLogger(__name__)

# Not a temp file: a fixed place any user can reach, for when the stack dir is not.
FALLBACK_ROOT = Path("/var/tmp/newsflow-es")  # noqa: S108


class ElasticsearchNode:
    name = "elasticsearch"
    cluster_name = "newsflow"

    def __init__(self, settings: StackSettings, secure: SecureFiles | None = None) -> None:
        self.settings = settings
        self.secure = secure  # None: security off
        self.stack_dir = settings.dir.resolve()
        self.pid_file = self.stack_dir / "elasticsearch.pid"
        self.port = settings.es_port

    @property
    def address(self) -> str:
        return self.settings.elasticsearch_url

    @property
    def version(self) -> str:
        return artifacts.pinned_versions().elasticsearch

    @property
    def root(self) -> Path:
        return (self.stack_dir / "elasticsearch").resolve()

    @property
    def log_file(self) -> Path:
        return self.root / "logs" / "stdout.log"

    @property
    def server_log(self) -> Path:
        # Elasticsearch names its plain-text log after the cluster (cluster.name).
        return self.root / "logs" / f"{self.cluster_name}.log"

    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def run_as(self) -> str | None:
        """The user to run the node as, or None for the current user."""
        return self.settings.es_user if os.geteuid() == 0 else None

    def elasticsearch_yml(self, root: Path) -> str:
        s = self.settings
        security = (
            es_security.yml_lines()
            if self.secure
            else [
                # Bound to loopback only; the docker-compose file does the same in its network.
                "xpack.security.enabled: false",
            ]
        )
        return "\n".join(
            [
                "# Written by `newsflow stack up`; edits are overwritten.",
                f"cluster.name: {self.cluster_name}",
                "node.name: newsflow-1",
                "network.host: 127.0.0.1",
                f"http.port: {s.es_port}",
                f"transport.port: {s.es_transport_port}",
                "discovery.type: single-node",
                *security,
                f"path.data: {root / 'data'}",
                f"path.logs: {root / 'logs'}",
                # A nearly full disk would turn indices read-only and stall the indexer with
                # errors that look like Elasticsearch bugs; a development node should not.
                "cluster.routing.allocation.disk.threshold_enabled: false",
                "",
            ]
        )

    def start(self) -> int:
        if port_open(self.port) or port_open(self.settings.es_transport_port):
            raise StackError(
                f"port {self.port} or {self.settings.es_transport_port} on 127.0.0.1 is taken "
                "by a process that is not this stack's Elasticsearch",
                "stop that process, or choose other ports with NEWSFLOW_STACK_ES_PORT and "
                "NEWSFLOW_STACK_ES_TRANSPORT_PORT",
            )
        jdk = find_jdk(
            21, self.settings.es_java_home, "Elasticsearch 9", "NEWSFLOW_STACK_ES_JAVA_HOME"
        )
        user = self.run_as()
        if user:
            _ensure_user(user)
        root = self._prepare_root(user)
        home = artifacts.elasticsearch_home(self.stack_dir / "artifacts", root / "dist")
        if self.secure:
            es_analysis.install(home, jdk, self.version)
        conf = root / "config"
        if not (conf / "jvm.options").is_file():
            shutil.copytree(home / "config", conf, dirs_exist_ok=True)
        (conf / "elasticsearch.yml").write_text(self.elasticsearch_yml(root))
        for d in ("data", "logs", "tmp"):
            (root / d).mkdir(exist_ok=True)
        if user:
            _chown_tree(user, [conf, root / "data", root / "logs", root / "tmp"])
        env = self._env(jdk, root, conf)
        if self.secure:
            es_security.prepare(home, conf, env, user, self.secure)
        log.info("starting Elasticsearch %s on %s (JDK %s)", self.version, self.address, jdk.major)
        return start_detached(
            [str(home / "bin" / "elasticsearch")],
            log_file=self.log_file,
            pid_file=self.pid_file,
            env=env,
            cwd=root,
            user=user,
        )

    def _env(self, jdk: Jdk, root: Path, conf: Path) -> dict[str, str]:
        """The environment of the node and of its command-line tools."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(root),
            "ES_JAVA_HOME": str(jdk.home),
            "ES_PATH_CONF": str(conf),
            "ES_TMPDIR": str(root / "tmp"),
            "ES_JAVA_OPTS": f"-Xms{self.settings.es_heap} -Xmx{self.settings.es_heap}",
        }

    def _prepare_root(self, user: str | None) -> Path:
        link = self.stack_dir / "elasticsearch"
        if link.is_symlink():
            target = link.resolve()
            target.mkdir(parents=True, exist_ok=True)
            return target
        link.mkdir(parents=True, exist_ok=True)
        if user is None:
            return link
        shutil.chown(link, user)
        if _user_can_write(user, link):
            return link
        # The unprivileged user cannot reach the stack directory (under /root, say).
        FALLBACK_ROOT.mkdir(mode=0o755, exist_ok=True)
        target = FALLBACK_ROOT / hashlib.sha256(str(self.stack_dir).encode()).hexdigest()[:12]
        target.mkdir(exist_ok=True)
        shutil.chown(target, user)
        link.rmdir()
        link.symlink_to(target)
        log.info("%s is not reachable by %s; Elasticsearch files live in %s", link, user, target)
        return target

    def healthy(self) -> bool:
        """True when cluster health is yellow or green (asked as the stack's superuser, over
        TLS checked against the stack's CA, when secured)."""
        if not port_open(self.port):
            return False
        url = f"{self.address}/_cluster/health?wait_for_status=yellow&timeout=2s"
        if self.secure:
            return _secure_healthy(url, self.secure)
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (our loopback URL)
                return json.load(resp).get("status") in ("yellow", "green")
        except (urllib.error.URLError, OSError, ValueError):
            return False


def _secure_healthy(url: str, secure: SecureFiles) -> bool:
    if not secure.made():
        return False  # never started secured: no CA to check the node against
    try:
        status, body = es_security.call(
            url,
            auth=es_security.superuser_auth(secure),
            context=es_security.tls_context(secure),
            timeout=5,
        )
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return status == 200 and isinstance(body, dict) and body.get("status") in ("yellow", "green")


def _ensure_user(user: str) -> None:
    try:
        pwd.getpwnam(user)
        return
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    done = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise StackError(
            f"could not create the user {user!r} that runs Elasticsearch: {done.stderr.strip()}",
            "create an unprivileged user and name it in NEWSFLOW_STACK_ES_USER",
        )
    log.info("created system user %s to run Elasticsearch (it refuses to run as root)", user)


def _user_can_write(user: str, path: Path) -> bool:
    test = shutil.which("test") or "/usr/bin/test"
    done = subprocess.run([test, "-w", str(path)], user=user, check=False)
    return done.returncode == 0


def _chown_tree(user: str, paths: list[Path]) -> None:
    for top in paths:
        shutil.chown(top, user)
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames + filenames:
                shutil.chown(Path(dirpath) / name, user)

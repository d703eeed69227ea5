"""Background server processes tracked by pid files: start detached, find, stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from deploy.stack.errors import StackError


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True if something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_pid(pid_file: Path) -> int | None:
    """The pid recorded in ``pid_file`` if that process is still alive."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def start_detached(
    argv: Sequence[str],
    *,
    log_file: Path,
    pid_file: Path,
    env: Mapping[str, str],
    cwd: Path,
    user: str | None = None,
) -> int:
    """Start ``argv`` as a daemon in its own session (so Ctrl-C in our terminal does not
    reach it, and it outlives us), output appended to ``log_file``; record its pid.

    A shell starts it in the background and exits at once, so the server is reparented to
    init instead of staying a child whose Popen object we would have to keep alive.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        done = subprocess.run(
            ["/bin/sh", "-c", '"$@" </dev/null >&2 & echo $!', "sh", *argv],
            stdout=subprocess.PIPE,
            stderr=out,  # the server writes here too: its stdout goes to >&2
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            user=user,
            group=_primary_group(user) if user else None,
            extra_groups=[] if user else None,
            check=True,
        )
    pid = int(done.stdout.strip())
    pid_file.write_text(f"{pid}\n")
    return pid


def run_as(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    user: str | None,
    stdin: str = "",
) -> subprocess.CompletedProcess[str]:
    """Run a tool to its end as ``user`` (None: as we are), ``stdin`` fed to it: how secrets
    reach a tool without showing on its command line."""
    return subprocess.run(
        list(argv),
        input=stdin,
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=cwd,
        user=user,
        group=_primary_group(user) if user else None,
        extra_groups=[] if user else None,
        check=False,
    )


def _primary_group(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_gid


def stop(pid_file: Path, name: str, grace: float = 60.0) -> bool:
    """SIGTERM the process group of the process in ``pid_file``, wait up to ``grace`` seconds
    for a clean shutdown, then SIGKILL. Returns whether something was running."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    # The server was started in a session of its own, so its process group holds it and
    # whatever it forked (Elasticsearch's launcher forks the server JVM): signal them all.
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return False
    _signal_group(pgid, signal.SIGTERM)
    if not wait_until(lambda: not _group_alive(pgid), grace):
        _signal_group(pgid, signal.SIGKILL)
        if not wait_until(lambda: not _group_alive(pgid), 10):
            raise StackError(f"{name} (pid {pid}) did not stop", f"kill it by hand: kill -9 {pid}")
    pid_file.unlink(missing_ok=True)
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a (possibly large) log file."""
    if not path.is_file():
        return ""
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 256 * 1024))
        data = f.read().decode("utf-8", errors="replace")
    return "\n".join(data.splitlines()[-lines:])

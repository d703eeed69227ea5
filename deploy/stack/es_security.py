"""Elasticsearch's own security, for a secured stack: TLS on the HTTP and transport
layers with the stack's certificate, the stack's superuser in the file realm, and the API
key newsflow's clients use.

The superuser lives in the file realm (``config/users``, written by
``bin/elasticsearch-users``), not in the security index: health checks then work from the
node's first second, before that index exists or while its shard recovers. The API key
does live in the index (see deploy/stack/es_analysis.py for what that index needs).
Secrets reach the node's tools on their standard input, never their command line.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deploy.stack.errors import StackError
from deploy.stack.process import run_as
from deploy.stack.secure import ES_SUPERUSER, SecureFiles
from newsflow import redact

log = logging.getLogger(__name__)

API_KEY_NAME = "newsflow"
# What newsflow does, and nothing more: cluster health and node info (monitor), its index
# templates, and everything on indices. "*" because tests give every index its own prefix;
# the restricted system indices (.security and the like) stay out of reach all the same.
API_KEY_ROLE = {
    "cluster": ["monitor", "manage_index_templates"],
    "indices": [{"names": ["*"], "privileges": ["all"]}],
}
KEYSTORE_SETTINGS = (
    "xpack.security.http.ssl.keystore.secure_password",
    "xpack.security.transport.ssl.keystore.secure_password",
)


def yml_lines() -> list[str]:
    """elasticsearch.yml's security settings; paths are relative to the config directory,
    the only one the node's entitlements let it read certificates from."""
    return [
        "xpack.security.enabled: true",
        "xpack.security.http.ssl.enabled: true",
        "xpack.security.http.ssl.keystore.path: certs/server.p12",
        # Single-node discovery does not exempt the node from the bootstrap check that
        # wants transport TLS with security on (9.5 only warns on loopback, but would refuse
        # to start if bootstrap checks were enforced): the same certificate serves there.
        "xpack.security.transport.ssl.enabled: true",
        "xpack.security.transport.ssl.verification_mode: certificate",
        "xpack.security.transport.ssl.keystore.path: certs/server.p12",
        "xpack.security.transport.ssl.certificate_authorities: certs/ca.pem",
    ]


def prepare(
    home: Path, conf: Path, env: Mapping[str, str], user: str | None, secure: SecureFiles
) -> None:
    """Put the certificates, the keystore's store passwords and the superuser in the
    node's config directory (already owned by ``user``)."""
    passwords = secure.passwords()
    certs = conf / "certs"
    certs.mkdir(mode=0o700, exist_ok=True)
    for source, mode in ((secure.server_store, 0o600), (secure.ca_pem, 0o644)):
        copy = certs / source.name
        shutil.copyfile(source, copy)
        copy.chmod(mode)
        if user:
            shutil.chown(copy, user)
    if user:
        shutil.chown(certs, user)
    hidden = secure.hidden()
    keystore = conf / "elasticsearch.keystore"
    if not keystore.is_file():
        # One value per setting name, a line each; -f creates the keystore without asking.
        store = passwords.server_store
        done = run_as(
            [str(home / "bin" / "elasticsearch-keystore"), "add", "-x", "-f", *KEYSTORE_SETTINGS],
            env=env,
            cwd=conf,
            user=user,
            stdin=f"{store}\n{store}\n",
        )
        if done.returncode != 0:
            keystore.unlink(missing_ok=True)  # half-made: redone at the next start
            raise StackError(
                "elasticsearch-keystore failed:\n" + redact.cut(done.stdout + done.stderr, hidden),
                f"see {conf}; `newsflow stack up` tries again",
            )
    if not _has_user(conf / "users", ES_SUPERUSER):
        password = passwords.es_superuser
        done = run_as(
            [str(home / "bin" / "elasticsearch-users"), "useradd", ES_SUPERUSER, "-r", "superuser"],
            env=env,
            cwd=conf,
            user=user,
            stdin=f"{password}\n{password}\n",  # asked twice: password and its repetition
        )
        if done.returncode != 0:
            raise StackError(
                "elasticsearch-users failed:\n" + redact.cut(done.stdout + done.stderr, hidden),
                f"see {conf / 'users'}; `newsflow stack up` tries again",
            )


def _has_user(users: Path, name: str) -> bool:
    try:
        return any(line.startswith(f"{name}:") for line in users.read_text().splitlines())
    except FileNotFoundError:
        return False


def tls_context(secure: SecureFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(secure.ca_pem))


def superuser_auth(secure: SecureFiles) -> str:
    pair = f"{ES_SUPERUSER}:{secure.passwords().es_superuser}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def call(
    url: str,
    *,
    auth: str | None,
    context: ssl.SSLContext,
    method: str = "GET",
    body: Any = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """(HTTP status, decoded JSON body or None) of one request to the node."""
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = auth
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, context=context, timeout=timeout) as resp:  # noqa: S310
            return resp.status, _json(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, _json(err.read())


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def ensure_api_key(base_url: str, secure: SecureFiles, timeout: float) -> str:
    """newsflow's API key: the stored one while it still authenticates, else a new one
    made by the superuser and stored in its place."""
    context = tls_context(secure)
    stored = secure.api_key()
    if stored is not None and _authenticates(base_url, stored, context, timeout):
        return stored
    status, body = call(
        f"{base_url}/_security/api_key",
        auth=superuser_auth(secure),
        context=context,
        method="POST",
        body={
            "name": API_KEY_NAME,
            "role_descriptors": {API_KEY_NAME: API_KEY_ROLE},
            "metadata": {"made_by": "newsflow stack up"},
        },
    )
    if status != 200 or not isinstance(body, dict) or "encoded" not in body:
        raise StackError(
            f"Elasticsearch refused to make newsflow's API key: {status} {_reason(body)}",
            "see `newsflow stack logs elasticsearch`",
        )
    encoded = str(body["encoded"])
    secure.save_api_key(encoded)
    log.info("made a new Elasticsearch API key for newsflow (id %s)", body.get("id"))
    return encoded


def _authenticates(base_url: str, key: str, context: ssl.SSLContext, timeout: float) -> bool:
    """Whether the node accepts ``key``. Any answer other than yes (200) or no (401), such
    as 503 while the security index recovers, is asked again until ``timeout``."""
    deadline = time.monotonic() + max(timeout, 5.0)
    while True:
        status, body = call(
            f"{base_url}/_security/_authenticate", auth=f"ApiKey {key}", context=context
        )
        if status in (200, 401):
            return status == 200
        if time.monotonic() > deadline:
            raise StackError(
                f"Elasticsearch could not check newsflow's API key: {status} {_reason(body)}",
                "see `newsflow stack logs elasticsearch`",
            )
        time.sleep(1.0)


def _reason(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("reason", ""))
    return ""

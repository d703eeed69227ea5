"""Certificates and credentials of a secured stack, made once in ``<stack dir>/secure/``.

Every later ``up`` reuses them, so clients configured from ``client.env`` keep working:

    passwords.json  random passwords: the two PKCS12 stores, Kafka's SCRAM users (the
                    broker's own ``admin`` and the clients' ``newsflow``) and the
                    Elasticsearch superuser the stack itself uses
    ca.p12          the local certificate authority's key pair
    ca.pem          its certificate, for clients (NEWSFLOW_KAFKA_SSL_CAFILE and
                    NEWSFLOW_ELASTICSEARCH_CA_FILE); public, so readable by all
    server.p12      the key and certificate both servers present, signed by the CA, for
                    IP:127.0.0.1 and DNS:localhost, with the CA in its chain
    es-api-key      newsflow's Elasticsearch API key, in the encoded form clients send

Everything is made with the JDK's ``keytool``: no openssl, no Python crypto library.
Files that hold secrets are mode 0600 in a 0700 directory; passwords reach keytool through
its environment (``-storepass:env``), never its command line, which any local user can read.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from deploy.stack.errors import StackError
from newsflow import redact

log = logging.getLogger(__name__)

KAFKA_ADMIN = "admin"  # the broker's own SCRAM user (inter-broker, health checks)
KAFKA_CLIENT = "newsflow"  # the SCRAM user newsflow's clients log in as
ES_SUPERUSER = "newsflow-stack"  # file-realm superuser: health checks, making the API key
SERVER_ALIAS = "server"
# Ten years for both certificates: they never leave this machine, and Java and Python
# clients do not apply the browsers' limits on server certificate lifetimes.
VALIDITY_DAYS = "3650"


@dataclass(frozen=True)
class Passwords:
    ca_store: str
    server_store: str
    kafka_admin: str
    kafka_client: str
    es_superuser: str

    @classmethod
    def new(cls) -> Passwords:
        # token_urlsafe keeps to [A-Za-z0-9_-]: safe unquoted in a JAAS line, in
        # kafka-storage's --add-scram syntax and in a shell-sourced client.env.
        return cls(**{name: secrets.token_urlsafe(24) for name in cls.__dataclass_fields__})


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only, also when it already existed
    with wider permissions; the new content replaces the old in one rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    tmp.replace(path)


class SecureFiles:
    """The ``secure/`` directory of one stack directory."""

    def __init__(self, stack_dir: Path) -> None:
        self.dir = stack_dir.resolve() / "secure"
        self.passwords_file = self.dir / "passwords.json"
        self.ca_store = self.dir / "ca.p12"
        self.ca_pem = self.dir / "ca.pem"
        self.server_store = self.dir / "server.p12"
        self.api_key_file = self.dir / "es-api-key"
        self._passwords: Passwords | None = None

    def made(self) -> bool:
        return self.passwords_file.is_file() and self.ca_pem.is_file()

    def passwords(self) -> Passwords:
        if self._passwords is None:
            try:
                raw = json.loads(self.passwords_file.read_text())
                self._passwords = Passwords(**raw)
            except (OSError, ValueError, TypeError):
                raise StackError(
                    f"the secured stack's passwords ({self.passwords_file}) are missing or "
                    "unreadable",
                    "run `newsflow stack up --secure` to make them",
                ) from None
        return self._passwords

    def hidden(self) -> list[str]:
        """Every secret this directory holds (for redaction, and for tests to look for)."""
        found = list(asdict(self.passwords()).values()) if self.passwords_file.is_file() else []
        key = self.api_key()
        return [*found, key] if key else found

    def prepare(self, keytool: Path, formatted: bool) -> Passwords:
        """Passwords and certificates, made if missing. ``formatted`` says that the stack's
        Kafka storage exists already: it holds SCRAM credentials of the old passwords, so new
        ones would lock the stack out of its own broker."""
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        if not self.passwords_file.is_file():
            if formatted:
                raise StackError(
                    f"{self.passwords_file} is gone, but the stack's Kafka storage was "
                    "formatted with the passwords it held",
                    f"remove {self.dir.parent} to start the stack afresh (its data is lost), "
                    "or use another NEWSFLOW_STACK_DIR",
                )
            write_private(self.passwords_file, json.dumps(asdict(Passwords.new()), indent=2))
            log.info("made new passwords in %s", self.passwords_file)
        passwords = self.passwords()
        if not (self.ca_pem.is_file() and self.server_store.is_file()):
            self._make_certificates(keytool, passwords)
        return passwords

    def api_key(self) -> str | None:
        try:
            return self.api_key_file.read_text().strip() or None
        except FileNotFoundError:
            return None

    def save_api_key(self, encoded: str) -> None:
        write_private(self.api_key_file, encoded + "\n")

    def _make_certificates(self, keytool: Path, passwords: Passwords) -> None:
        """A CA, and a server certificate it signs, made in a scratch directory and moved
        into place at the end, so that a failure half-way leaves nothing half-made."""
        work = self.dir / ".making"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(mode=0o700)
        env = {
            **os.environ,
            "NEWSFLOW_CA_STORE_PASSWORD": passwords.ca_store,
            "NEWSFLOW_SERVER_STORE_PASSWORD": passwords.server_store,
        }
        for step in _certificate_steps():
            done = subprocess.run(
                [str(keytool), *step], cwd=work, env=env, capture_output=True, text=True
            )
            if done.returncode != 0:
                output = redact.cut(done.stdout + done.stderr, asdict(passwords).values())
                raise StackError(
                    f"keytool {step[0]} failed making the stack's certificates:\n{output.strip()}",
                    f"check that {keytool} works; {work} holds what was made so far",
                )
        for name in ("ca.p12", "server.p12"):
            (work / name).chmod(0o600)
        (work / "ca.pem").chmod(0o644)
        for name in ("ca.p12", "ca.pem", "server.p12"):
            (work / name).replace(self.dir / name)
        shutil.rmtree(work)
        log.info("made a CA and a server certificate for 127.0.0.1 in %s", self.dir)


def _certificate_steps() -> list[list[str]]:
    """keytool's arguments, step by step, run in the scratch directory: a CA, then a server
    key pair whose certificate the CA signs. Store passwords come from the environment."""
    ca = ["-keystore", "ca.p12", "-storetype", "PKCS12"]
    ca += ["-storepass:env", "NEWSFLOW_CA_STORE_PASSWORD"]
    server = ["-keystore", "server.p12", "-storetype", "PKCS12"]
    server += ["-storepass:env", "NEWSFLOW_SERVER_STORE_PASSWORD"]
    key = ["-keyalg", "RSA", "-keysize", "3072", "-validity", VALIDITY_DAYS]
    # The CA: basic constraints CA:true and key usage for signing, both critical, as
    # strict verifiers (OpenSSL's X509_STRICT, newer Pythons) require.
    ca_name = ["-dname", "CN=newsflow local stack CA"]
    ca_ext = ["-ext", "bc:c=ca:true", "-ext", "ku:c=keyCertSign,cRLSign"]
    # Clients connect to 127.0.0.1 and check the name: the IP must be in the SAN.
    # clientAuth too: Elasticsearch's transport layer presents it to itself.
    server_ext = ["-ext", "san=ip:127.0.0.1,dns:localhost", "-ext", "eku=serverAuth,clientAuth"]
    server_ext += ["-ext", "ku:c=digitalSignature,keyEncipherment"]
    sign = ["-infile", "server.csr", "-outfile", "server.pem", "-rfc"]
    return [
        ["-genkeypair", "-alias", "ca", *key, *ca_name, *ca_ext, *ca],
        ["-exportcert", "-rfc", "-alias", "ca", "-file", "ca.pem", *ca],
        ["-genkeypair", "-alias", SERVER_ALIAS, *key, "-dname", "CN=localhost", *server],
        ["-certreq", "-alias", SERVER_ALIAS, "-file", "server.csr", *server],
        ["-gencert", "-alias", "ca", *sign, "-validity", VALIDITY_DAYS, *server_ext, *ca],
        # The signed certificate replaces the self-signed one; keytool builds the chain
        # from the CA entry imported first, which is then dropped again: the store
        # should hold one key entry, not a trust anchor for whoever reads it.
        ["-importcert", "-noprompt", "-alias", "ca", "-file", "ca.pem", *server],
        ["-importcert", "-alias", SERVER_ALIAS, "-file", "server.pem", *server],
        ["-delete", "-alias", "ca", *server],
    ]

"""How a newsflow command ends: its exit code, and the errors that stop it before its
work is done, each said in one line with what to do about it.

Exit codes, the same for every command (``newsflow --help`` repeats them):

    0  all well
    1  the command ran, and found or met failures: some inputs could not be ingested (each
       counted and dead-lettered), an audit found pages missing, a service is not healthy
    2  nothing (or not all) could be done: a bad option or input file, a service that
       cannot be reached, a topic laid out wrongly; the message says what to do
    3  newsflow itself failed (a bug): the message says how to see the traceback

Library code raises ``SetupError`` (or a subclass); the command line turns it into its
message and exit code 2. Raising it instead of a library's own exception is what lets
the message name the address and the remedy, which the exception deep in a client
cannot know.
"""

from __future__ import annotations

OK = 0
SOME_FAILED = 1
SETUP = 2
BUG = 3
# Output piped into a reader that stopped (`| head`): what a program killed by SIGPIPE
# returns, so a shell pipeline reads it as every other tool's.
BROKEN_PIPE = 128 + 13

EXIT_CODES_HELP = (
    "Exit codes: 0 all well; 1 some inputs failed or a check found problems; "
    "2 bad usage or set-up (a service unreachable, a bad file); 3 a bug in newsflow."
)


class SetupError(Exception):
    """The command cannot do its work as things are set up; ``hint`` says what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


# What to do when a service does not answer: the local stack, or the setting to correct.
REMEDIES = {
    "Kafka": "start the local stack with `newsflow stack up`, or point "
    "NEWSFLOW_KAFKA_BOOTSTRAP (--kafka) at your broker",
    "Elasticsearch": "start the local stack with `newsflow stack up`, or point "
    "NEWSFLOW_ELASTICSEARCH_URL (--elasticsearch) at your node",
}


class Unreachable(SetupError):
    """A service did not answer at its address."""

    def __init__(self, service: str, address: str, cause: str | BaseException) -> None:
        why = cause if isinstance(cause, str) else describe_cause(cause)
        super().__init__(f"cannot reach {service} at {address} ({why})", REMEDIES[service])
        self.service, self.address = service, address


class Refused(SetupError):
    """A service answered and refused newsflow: credentials, a certificate, a protocol.
    Unlike ``Unreachable``, waiting does not help, so a worker stops on it."""

    def __init__(self, service: str, address: str, why: str, hint: str) -> None:
        super().__init__(f"{service} at {address} {why}", hint)
        self.service, self.address = service, address


def causes(err: BaseException) -> list[BaseException]:
    """``err`` and the exceptions it was raised from or during, outermost first."""
    seen: set[int] = set()
    found: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def describe_cause(err: BaseException) -> str:
    """A short reason for a connection failure: the innermost OS error's words where there
    is one ("connection refused"), else the exception's class."""
    for current in causes(err):
        if isinstance(current, OSError) and current.strerror:
            return current.strerror.lower()
    return type(err).__name__

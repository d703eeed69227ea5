"""The one exception of the local stack; ``hint`` tells the user how to fix it."""

from newsflow.errors import SetupError


class StackError(SetupError):
    """The local stack cannot be installed, started or stopped as asked."""

    def __str__(self) -> str:
        # Stack failures often quote a log's last lines: the hint goes on its own line.
        return f"{self.message}\n  -> {self.hint}" if self.hint else self.message

"""The one exception of the local stack; ``hint`` tells the user how to fix it."""


class StackError(Exception):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        message = super().__str__()
        return f"{message}\n  -> {self.hint}" if self.hint else message

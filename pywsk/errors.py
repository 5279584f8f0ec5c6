"""Errors and exit codes, as in wsk (apache/openwhisk-client-go `whisk/wskerror.go`, `whisk/client.go`).

- 0 success; 1 general error; 2 usage error; 3 network error;
- HTTP error responses exit with `status - 256` (404 -> 148, 409 -> 153, 502 -> 246, ...), as the Go client does;
- a blocking invoke that is still running after the server's wait (HTTP 202) exits with 202;
- 149 (`NOT_ALLOWED`) for contradictory flags such as `--kind` together with `--docker`.
"""

from __future__ import annotations

EXIT_CODE_SUCCESS = 0
EXIT_CODE_ERR_GENERAL = 1
EXIT_CODE_ERR_USAGE = 2
EXIT_CODE_ERR_NETWORK = 3
EXIT_CODE_TIMED_OUT = 202
EXIT_CODE_NOT_FOUND = 148
NOT_ALLOWED = 149


def http_exit_code(status: int) -> int:
    """The exit code wsk uses for an HTTP error status (`status - 256`, as the OS truncates it)."""
    return (status - 256) & 0xFF


class WskError(Exception):
    """An error that ends the command: what to print and which exit code to use (like Go's `whisk.WskError`)."""

    def __init__(
        self,
        message: str,
        exit_code: int = EXIT_CODE_ERR_GENERAL,
        *,
        display_msg: bool = True,
        display_usage: bool = False,
        application_error: bool = False,
        timed_out: bool = False,
        body: object = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.display_msg = display_msg
        self.display_usage = display_usage
        self.application_error = application_error
        self.timed_out = timed_out
        self.body = body

    def wrap(self, message: str, *, display_usage: bool = False) -> WskError:
        """A new error with `message`, keeping this error's exit code and flags (Go's `MakeWskErrorFromWskError`)."""
        return WskError(
            message,
            self.exit_code,
            display_msg=self.display_msg,
            display_usage=self.display_usage or display_usage,
            application_error=self.application_error,
            timed_out=self.timed_out,
            body=self.body,
        )

    def __str__(self) -> str:
        return self.message


class UsageError(Exception):
    """A command line that could not be parsed (unknown flag, bad flag value, unknown command)."""

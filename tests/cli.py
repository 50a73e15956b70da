"""Running the real ``vigil`` command in the test process, and what it did."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

ERROR_PREFIX = "vigil: error:"


@dataclass(frozen=True)
class CliResult:
    """What one ``vigil`` command did: its exit status and what it printed."""

    status: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        """Lines of standard error that report the failure."""
        return [line for line in self.stderr.splitlines() if line.startswith(ERROR_PREFIX)]

    def single_error(self) -> str:
        """Check that the command failed the way a user should see it; return the message."""
        assert self.status != 0, f"expected a failure, got status 0\n{self.stderr}"
        assert "Traceback" not in self.stderr, self.stderr
        assert len(self.error_lines) == 1, self.stderr
        assert self.stderr.rstrip("\n").splitlines()[-1] == self.error_lines[0], self.stderr
        return self.error_lines[0].removeprefix(ERROR_PREFIX).strip()


VigilRunner = Callable[..., CliResult]
"""Runs ``vigil ARGS...`` in the test process (the ``vigil`` fixture)."""

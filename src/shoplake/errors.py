"""One error hierarchy: every error says what failed and what to do next."""

from __future__ import annotations


class ShoplakeError(Exception):
    """Base of every error shoplake raises on purpose.

    `retryable` tells a scheduler whether running the same thing again can help (a lock, a network
    blip) or whether a person has to change something first (a contract, a file, the config).
    """

    exit_code = 1
    retryable = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ConfigError(ShoplakeError):
    """The settings are wrong or incomplete (shoplake.yml, environment, CLI options)."""

    exit_code = 2


class ContractError(ConfigError):
    """A contract cannot be loaded: names the file and the offending text."""

    def __init__(self, source: str, problem: str, *, hint: str | None = None) -> None:
        super().__init__(f"contract {source}: {problem}", hint=hint)
        self.source = source
        self.problem = problem


class ModelError(ConfigError):
    """A gold SQL model cannot be loaded or ordered."""


class EngineError(ShoplakeError):
    """An engine name or capability that does not exist, or an engine failure."""


class FileRejected(ShoplakeError):
    """A landed file cannot be read at all (binary, wrong encoding, no header, empty)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}", hint="fix the export and drop the file again")
        self.path = path
        self.reason = reason


class BatchFailed(ShoplakeError):
    """A batch hit a fail_batch rule or a step failed; nothing of it reached silver or gold."""


class LakeBusy(ShoplakeError):
    """Another live shoplake process holds the lake (one writer per lake keeps batches exactly once)."""

    retryable = True


class LeaseLost(ShoplakeError):
    """This process can no longer prove it holds the lake (it stalled past its lease and another took
    over): it stops at once, writing and rolling back nothing, and leaves the lake to the new holder."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(
            "this process lost the lake's lease" + (f" ({detail})" if detail else "")
            + "; it stopped without writing or rolling back anything",
            hint="another shoplake process holds the lake now and finishes or rolls back this batch; "
            "`shoplake status` shows what it did")


class LakeStateMismatch(ConfigError):
    """The lake's tables and the state store disagree (a lost state database, a damaged Delta log):
    nothing runs until a person decides which one is right."""


class AuditFailed(BatchFailed):
    """An error-level audit check of a batch's written tables failed: the batch is rolled back like a
    fail_batch rule failure, every table back at its version before the batch."""

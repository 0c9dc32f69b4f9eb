"""One exception type per kind of bad input, so the CLI can print a one-line message and exit non-zero."""


class CxrbenchError(Exception):
    """Base of every error the CLI reports without a traceback."""


class UnknownNameError(CxrbenchError):
    """A task or generator name that no registry knows."""


class ConfigError(CxrbenchError):
    """A run setting outside what the protocol allows (negative ratio, too few seeds, ...)."""


class CacheError(CxrbenchError):
    """The cache directory cannot be used (not writable, not a directory)."""


class DataError(CxrbenchError):
    """Input data that does not match what a task expects (missing file, bad row, overlapping splits)."""


class GeneratorError(CxrbenchError):
    """A generator that cannot serve a task or returned output of the wrong shape or range."""


class SubmissionError(CxrbenchError):
    """A submission that fails validation; lists every problem found, each with its file and field."""

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        self.problems = problems
        lines = [f"{file}: {field}: {what}" if field else f"{file}: {what}" for file, field, what in problems]
        super().__init__(f"{len(problems)} problem(s) in the submission(s):\n" + "\n".join(lines))

"""One exception hierarchy for the whole package.

Every module raises a subclass of :class:`MoodscapeError`, so the CLI can turn any
expected failure into a one-line message instead of a traceback.
"""


class MoodscapeError(Exception):
    """Base class of every error moodscape raises on purpose."""


class ConfigError(MoodscapeError):
    """A setting is missing, of the wrong type, or out of range."""


class DataError(MoodscapeError):
    """An input table, annotation file or track is malformed."""


class AudioError(DataError):
    """An audio file is missing, unreadable, empty, silent or too short."""


class ArtifactError(MoodscapeError):
    """An artifact of a previous stage is missing or does not match its schema."""


class StorageError(MoodscapeError):
    """A file could not be written: the disk is full, read-only, or not ours to write."""


class EmptyStageError(MoodscapeError):
    """A stage would leave the next one nothing to work on; the message says why and what to change."""


class WorkdirBusyError(MoodscapeError):
    """Another moodscape command holds the work directory (its lock names the process)."""


class MissingArtifactError(ArtifactError):
    """An artifact a stage reads has not been written yet (``path`` names it).

    The CLI names the stage that writes it (from the stage registry) in its message.
    """

    def __init__(self, path) -> None:
        self.path = path
        super().__init__(f"missing artifact {path}: run the stage that writes it first")


class DamagedArtifactError(ArtifactError):
    """An artifact is there but unreadable or inconsistent (``path`` names it, ``problem`` says how).

    The CLI names the command that writes it again (from the stage registry) in its message.
    """

    def __init__(self, path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{problem}; run the stage that writes it again")

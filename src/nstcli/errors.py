"""Errors the library raises. Only cli/ turns them into messages and exit codes."""


class NSTError(Exception):
    """Base class: something the user can fix. `exit_code` is what the CLI exits with."""

    exit_code = 1


class ConfigError(NSTError):
    """A bad option, config key or value (usage error, exit code 2)."""

    exit_code = 2


class ImageError(NSTError):
    """An input image cannot be read, or an output image cannot be written."""


class WeightsError(NSTError):
    """VGG19 weights cannot be downloaded, found, read or verified."""


class ModelError(NSTError):
    """A fast style network's model file cannot be read: missing, not a model, or damaged."""


class MissingPackage(NSTError):
    """An optional package (a pip extra) a command needs is not installed (exit 1, as a missing weights package)."""


class WriteError(NSTError):
    """A file cannot be written: the disk is full, the folder is read-only, not ours, or gone (exit 1).

    `path` is the file (or folder) and `errno` the operating system's reason, so a caller can say
    what its run keeps (a checkpoint, finished frames) and a batch can stop rather than fail every item.
    """

    def __init__(self, message: str, path=None, errno: int | None = None):
        super().__init__(message)
        self.path = path
        self.errno = errno


class RunError(NSTError):
    """The optimisation itself failed (non-finite loss, out of memory)."""


class Interrupted(NSTError):
    """The run was stopped by Ctrl-C or SIGTERM; `saved` is where the current image went, if anywhere."""

    exit_code = 130

    def __init__(self, message: str, saved: str | None = None):
        super().__init__(message)
        self.saved = saved


class NSTWarning(UserWarning):
    """Something the user should know about a run that still goes ahead (printed as `Warning:`)."""


class RandomWeightsWarning(NSTWarning):
    """Results from an untrained network are textures, not style transfer."""


class PrecisionWarning(NSTWarning):
    """The precision asked for is computed in software here: the run is correct but slower."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's text, at most `limit` characters, or its class name if it has none.

    Third-party code (Pillow, torch, PyYAML) raises with multi-line or very long texts; an error
    message here is one line, so only the start of theirs is quoted.
    """
    text = str(exc).strip()
    if not text:
        return exc.__class__.__name__
    line = text.splitlines()[0].strip()
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."

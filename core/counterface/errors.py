"""Errors users can act on.

Every error that a user can cause (a bad photo, an unknown component name, a missing weights file)
derives from :class:`CounterfaceError`. The CLI prints ``str(error)`` as one line and exits with
``error.exit_code``; it never shows a traceback for these.
"""

from __future__ import annotations


class CounterfaceError(Exception):
    """Base class of every user-facing error. ``exit_code`` is what the CLI returns."""

    exit_code = 2

    def __str__(self) -> str:  # one line, always
        text = self.args[0] if len(self.args) == 1 else Exception.__str__(self)
        return " ".join(str(text).split())


class ConfigError(CounterfaceError):
    """A configuration value, option or TOML file is invalid."""


class UnknownComponentError(ConfigError, KeyError):
    """A component kind or name is not registered; the message lists the valid ones."""


class PluginError(CounterfaceError):
    """A plugin failed to import or to register its components."""


class ImageError(CounterfaceError):
    """An input image cannot be read (corrupt, not an image, too large, unsupported)."""


class NoFaceError(CounterfaceError):
    """No face was found in a photo (or none passed the size filter)."""

    exit_code = 3


class WeightsError(CounterfaceError):
    """A weights file is missing, corrupt, of the wrong network, or failed its hash check."""

    exit_code = 4


class OutputError(CounterfaceError):
    """An output path is unsafe (outside the output folder, or an input file)."""


class EditRangeError(CounterfaceError):
    """An edit left the generator's working range: the moved latent is not finite or too large, or
    the synthesized image is not finite (see :mod:`counterface.ranges`). The pair is not written; a
    batch records a failure row (reason ``out_of_range``)."""

    reason = "out_of_range"


class TargetNotFoundError(NoFaceError):
    """``--face match``: no face in the photo is similar enough to the reference person (batch failure
    reason ``target_not_found``); the photo is not edited rather than a guess."""


class ReferencePhotoError(ConfigError):
    """A reference photo for ``--face match`` is missing, unreadable or shows no face (batch failure
    reason ``bad_reference``)."""


def reason(exc: BaseException, limit: int = 160) -> str:
    """The message of a library's exception as a short, whole clause for one error line: terminal
    escape codes removed, whitespace collapsed, torch's long "Weights only load failed..." advice
    replaced by what it means, and a long message cut at a sentence or word end with "..." (never in
    the middle of a word). Empty messages give the exception's type name."""
    import re

    text = " ".join(re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(exc)).split())
    if text.startswith("Weights only load failed"):
        return "the file holds Python objects beyond tensors and plain containers (refused, nothing was run)"
    if text.startswith(("This file contains pickled (object) data", "Object arrays cannot be loaded")):
        return "the file holds pickled Python objects, not plain numbers (refused, nothing was run)"
    if not text:
        return type(exc).__name__
    if len(text) <= limit:
        return text
    head = text[: limit - 3]
    end = max(head.rfind(". "), head.rfind("; "))
    if end >= limit // 2:
        return head[: end + 1]
    space = head.rfind(" ")
    return (head[:space] if space >= limit // 2 else head).rstrip(" ,;:(") + "..."

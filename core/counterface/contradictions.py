"""Options that cannot go together: one table, checked once when the edit settings are built.

Each :class:`Contradiction` names the options (as a user types them), says why they contradict, and
checks an :class:`~counterface.settings.EditSettings`. The first that applies raises one
:class:`~counterface.errors.ConfigError` line (exit 2) before anything is loaded. ``docs/gen_cli.py``
renders :data:`CONTRADICTIONS` into docs/cli.md, so the list there is this table.

What an operator does with alpha, or whether it returns the photo, are attributes of the operator
(``uses_alpha``, ``returns_photo``; see :class:`counterface.Operator`), never its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .errors import ConfigError


def _operator(settings, role: str) -> Any:
    """The registered factory (class) of the operator filling ``role``, or None."""
    name = settings.operator_name(role)
    if not name:
        return None
    from .registry import entry

    try:
        return entry("operator", name).factory
    except ConfigError:
        return None  # an unknown name is reported where the component is built


def _uses_alpha(settings, role: str) -> bool:
    op = _operator(settings, role)
    return op is None or bool(getattr(op, "uses_alpha", True))


def _alpha_used(settings) -> bool:
    """Whether any operator the command renders takes the strength alpha."""
    return any(_uses_alpha(settings, role) for role in settings.roles)


def _names(settings) -> str:
    return " ".join(f"--{r} {settings.operator_name(r)}" for r in settings.roles if settings.operator_name(r))


def _sweep_ignored(s) -> str | None:
    if s.alphas and not _alpha_used(s):
        return (f"--alphas with {_names(s)}: these operators ignore alpha, so every alpha would give the same "
                "images under different labels; drop --alphas, or sweep with an operator that uses alpha "
                "(see `counterface plugins`)")
    return None


def _auto_ignored(s) -> str | None:
    if s.alpha == "auto" and not _uses_alpha(s, "pi1"):
        return (f"--alpha auto with --pi1 {s.operator_name('pi1')}: this operator ignores alpha, so the searched "
                "alpha would never be applied; drop --alpha auto, or use a pi1 operator that uses alpha")
    return None


def _alpha_ignored(s) -> str | None:
    if "alpha" in s.given and s.alpha != "auto" and not _alpha_used(s):
        return (f"--alpha with {_names(s)}: these operators ignore alpha, so it would be recorded but never "
                "applied; drop --alpha")
    return None


def _alpha_and_sweep(s) -> str | None:
    if "alpha" in s.given and s.alphas:
        return ("--alpha and --alphas together: --alphas is the sweep (each value for every direction); "
                "give one of them")
    return None


def _target_without_auto(s) -> str | None:
    if "target_score" in s.given and s.alpha != "auto":
        return "--target-score without --alpha auto: the target score is only used by the alpha search; add --alpha auto"
    return None


def _surplus_distance(s) -> str | None:
    n = s.directions
    for role in ("pi1", "pi0"):
        d = (s.config.get(role) or {}).get("distance")
        if isinstance(d, (list, tuple)) and len(d) != n and len(d) != 1:
            more = "more" if len(d) > n else "fewer"
            return (f"{len(d)} --distance values for {n} direction(s) ({more} than the directions that use them); "
                    "give one for all, or one per --direction")
    return None


def _reference_without_match(s) -> str | None:
    if s.edit.get("face") == "match":
        return None
    for key, flag in (("reference", "--reference"), ("references", "--references"),
                      ("reference_column", "--reference-column"), ("matcher", "--matcher"),
                      ("match_threshold", "--match-threshold")):
        if key in s.given and s.edit.get(key) not in (None, "", []):
            return f"{flag} without --face match: it only chooses the face to edit with --face match; add --face match"
    return None


def _pi1_photo(s) -> str | None:
    op = _operator(s, "pi1")
    if op is not None and getattr(op, "returns_photo", False):
        return (f"--pi1 {s.operator_name('pi1')}: this operator returns the photo itself, so Z1 would not have the "
                "attribute turned on (it belongs to --pi0)")
    return None


def _same_operators(s) -> str | None:
    if "pi0" not in s.roles or "pi1" not in s.roles:
        return None
    a, b = s.config.get("pi1") or {}, s.config.get("pi0") or {}
    if a.get("name") and a == b:
        return f"--pi1 and --pi0 are the same operator ({a['name']}): Z1 and Z0 would be the same image"
    return None


def _identity(spec: Any) -> tuple[str, str | None] | None:
    """(component name, file) of a --direction/--keep value, or None when it names nothing known
    (reported where the component is built)."""
    from .config import direction_section

    if isinstance(spec, dict):
        return str(spec.get("name")), spec.get("path")
    try:
        name, params = direction_section(str(spec))
    except ConfigError:
        return None
    return name, params.get("path")


def _keep_edited(s) -> str | None:
    keep = s.edit.get("keep") or []
    if not keep:
        return None
    edited = {_identity(dict(s.config.get("direction") or {}))}
    edited |= {_identity(d) for d in (s.edit.get("directions") or [])}
    for k in keep:
        if _identity(k) in edited:
            return (f"--keep {k} is also an edited direction: keeping its signed distance fixed cancels the edit; "
                    "drop it from --keep")
    return None


@dataclass(frozen=True)
class Contradiction:
    """Options that cannot go together: ``options`` as typed, ``why`` in a few words, ``check``
    returning the one-line message when ``settings`` contain them (else None)."""

    options: str
    why: str
    check: Callable[[Any], "str | None"]


CONTRADICTIONS: tuple[Contradiction, ...] = (
    Contradiction("--alphas (a sweep) with operators that ignore alpha (e.g. --pi1 on --pi0 off)",
                  "every alpha gives the same images, labelled with different alphas", _sweep_ignored),
    Contradiction("--alpha auto with a --pi1 operator that ignores alpha (e.g. --pi1 on)",
                  "the searched alpha is recorded but never applied", _auto_ignored),
    Contradiction("--alpha A with operators that all ignore alpha (e.g. --pi1 on --pi0 off)",
                  "the alpha is recorded but never applied", _alpha_ignored),
    Contradiction("--alpha with --alphas", "--alphas is the sweep; --alpha is one value per direction",
                  _alpha_and_sweep),
    Contradiction("--target-score without --alpha auto", "only the alpha search uses the target", _target_without_auto),
    Contradiction("more (or fewer) --distance values than directions (other than one for all)",
                  "the surplus values would be dropped", _surplus_distance),
    Contradiction("--reference, --references, --reference-column, --matcher or --match-threshold without "
                  "--face match", "they only choose the face with --face match", _reference_without_match),
    Contradiction("--pi1 with an operator that returns the photo (e.g. --pi1 original)",
                  "Z1 would be the photo, not the attribute turned on", _pi1_photo),
    Contradiction("--pi1 and --pi0 the same operator with the same parameters", "Z1 = Z0", _same_operators),
    Contradiction("--keep naming a direction that is also edited (--direction)",
                  "keeping its distance fixed cancels the edit", _keep_edited),
)


def check(settings) -> None:
    """Raise one ConfigError for the first contradiction in ``settings``."""
    for c in CONTRADICTIONS:
        message = c.check(settings)
        if message:
            raise ConfigError(message)


def markdown() -> str:
    """The table for docs/cli.md."""
    lines = ["| options | why they are refused |", "|---|---|"]
    lines += [f"| {c.options} | {c.why} |" for c in CONTRADICTIONS]
    return "\n".join(lines)

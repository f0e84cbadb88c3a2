"""Shared CLI plumbing: one-line errors, component-choice options, progress bars."""

from __future__ import annotations

import functools
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from .. import kinds, ranges
from ..errors import CounterfaceError

COMPONENT_OPTIONS = kinds.options()  # --aligner NAME, ..., --pi1 NAME, --pi0 NAME (counterface.kinds)
#: help of the options that do not choose one component of their own kind
_OPTION_HELP = {
    "direction": "Attribute to edit: a registered direction or a boundary file (repeat to edit several at once; "
                 "see docs/pipeline.md).",
    "pi1": "pi_1 operator, the Z1 image: shift (default: alpha along the normal) or on (see `counterface plugins`).",
    "pi0": "pi_0 operator, the Z0 image: reconstruction (default), original, negate, off or neutral.",
    "scorer": "Attribute scorer for --alpha auto (see `counterface plugins`).",
}


class FiniteFloat(click.FloatRange):
    """A float option that refuses NaN and infinities, and values outside ``[min, max]`` when given
    (click's FloatRange alone lets ``nan`` through every bound)."""

    name = "number"

    def convert(self, value: Any, param, ctx) -> float:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)

    def _describe_range(self) -> str:
        """The range shown in --help; nothing for an unbounded (only finite) number."""
        return "" if self.min is None and self.max is None else super()._describe_range()


def finite(min: float | None = None, max: float | None = None, *, min_open: bool = False,
           max_open: bool = False) -> FiniteFloat:
    """The type of a numeric option: finite, optionally within a range (``type=finite(min=0)``)."""
    return FiniteFloat(min=min, max=max, min_open=min_open, max_open=max_open)


class CounterfaceGroup(click.Group):
    """A click group that turns user-facing errors into one line on stderr and an exit code.

    Commands that plugins add through ``register_commands`` are attached on first lookup.
    """

    _plugin_commands_loaded = False

    def _load_plugin_commands(self) -> None:
        if self._plugin_commands_loaded:
            return
        self._plugin_commands_loaded = True
        from .. import plugins

        plugins.call_each("register_commands", lambda _plugin: {"cli": self})  # failures recorded per plugin

    def list_commands(self, ctx):
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx, cmd_name):
        self._load_plugin_commands()
        return super().get_command(ctx, cmd_name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            rest = super().parse_args(ctx, args)
        except click.ClickException as exc:  # `counterface --bogus`: one line, not click's usage block
            _fail(f"error: {click_message(exc)}", exc.exit_code)
        if ctx.params.get("disabled_plugins"):  # before any sub-command or component is looked up
            from .. import plugins

            plugins.disable(ctx.params["disabled_plugins"])
        return rest

    def invoke(self, ctx: click.Context) -> Any:
        from ..rows import reporting  # malformed table rows: one warning line each, and a count

        try:
            with reporting(lambda msg: click.echo(f"warning: {msg}", err=True)):
                return super().invoke(ctx)
        except CounterfaceError as exc:
            _fail(f"error: {exc}", exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except BrokenPipeError:  # `counterface plugins | head`: the reader left; not an error
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)
        except click.ClickException as exc:  # usage errors of sub-commands: one line too
            _fail(f"error: {click_message(exc)}", exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except MemoryError:
            _fail("error: out of memory (try a smaller --set tuner.resolution or fewer workers)", 1)
        except Exception as exc:  # noqa: BLE001 - never a traceback for users
            if os.environ.get("COUNTERFACE_DEBUG"):
                raise
            msg = " ".join(str(exc).split()) or type(exc).__name__
            _fail(f"internal error: {type(exc).__name__}: {msg} (set COUNTERFACE_DEBUG=1 for a traceback)", 1)


def click_message(exc: click.ClickException) -> str:
    """Click's own message on one line; usage errors point at the command's --help."""
    msg = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        msg += f" (see `{ctx.command_path} --help`)"
    return msg


def photo_error(path, exc: CounterfaceError) -> None:
    """Print one line for a photo that failed: ``error: PATH: reason`` (the path only once)."""
    msg = str(exc)
    click.echo(f"error: {msg if msg.startswith(str(path)) else f'{path}: {msg}'}", err=True)


def is_photo_error(exc: CounterfaceError) -> bool:
    """True for failures that belong to one photo (unreadable, no face, an unsafe output name):
    report them and go on. Configuration, weights and plugin errors would fail every photo the
    same way: stop at the first."""
    from ..errors import ConfigError, PluginError, WeightsError

    return not isinstance(exc, (ConfigError, PluginError, WeightsError))


def check_output_dir(path) -> None:
    """Fail early, with one line, if the output folder cannot be created or written.

    Nothing is left behind: the nearest existing folder is probed with a temporary folder that is
    removed at once, so a run that fails later does not leave an empty output folder either.
    """
    import tempfile
    from pathlib import Path

    from ..errors import OutputError

    p = Path(path)
    probe = p
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        what = "is not a folder" if probe == p else f"cannot be created: {probe} is a file"
        raise OutputError(f"output folder {p} {what}")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".counterface-probe-", dir=probe))
    except OSError as exc:
        where = "" if probe == p else f" (in {probe})"
        raise OutputError(f"cannot write to output folder {p}{where}: {exc.strerror or exc}") from None


def _fail(message: str, code: int):
    click.echo(message, err=True)
    sys.exit(code)


def pipeline_options(func: Callable) -> Callable:
    """Options that compose a pipeline by name: --preset, --config, --<kind> NAME, --set K=V."""
    opts = [
        click.option("--preset", default=None, help="Named composition (see `counterface presets`); default smilegan-pti."),
        click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                     help="TOML file with the same keys as --set (see docs/cli.md)."),
        click.option("--set", "sets", multiple=True, metavar="KIND.PARAM=VALUE",
                     help="Set a component parameter, e.g. --set tuner.tune_steps=100 (repeatable)."),
        click.option("--precision", type=click.Choice(["auto", "fp32", "tf32", "bf16"]), default=None,
                     help="Numeric precision (edit.precision): auto (default: tf32 on CUDA, fp32 on the CPU), "
                          "fp32, tf32 or bf16 (CUDA only). See docs/performance.md for the drift against fp32."),
        click.option("--deterministic/--no-deterministic", default=None, help="edit.deterministic (default: on for the CPU, off on CUDA); --precision fp32 --deterministic is the exact path."),
    ]
    for kind in COMPONENT_OPTIONS:
        opts.append(click.option(f"--{kind}", f"comp_{kind}", default=None, metavar="NAME",
                                 multiple=kind == "direction",
                                 help=_OPTION_HELP.get(kind, f"Choose the {kind} by name (see `counterface plugins`).")))
    for opt in reversed(opts):
        func = opt(func)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        components = {k: kwargs.pop(f"comp_{k}") for k in COMPONENT_OPTIONS}
        kwargs["components"] = components
        precision = kwargs.pop("precision", None)
        if precision is not None:  # edit.precision, applied by resolve_config / edit_settings
            click.get_current_context().meta[PRECISION_KEY] = precision
        if kwargs.get("deterministic") is not None:  # --deterministic is --set edit.deterministic=true
            kwargs["sets"] = (*(kwargs.get("sets") or ()), f'edit.deterministic={str(kwargs["deterministic"]).lower()}')
        kwargs.pop("deterministic", None)
        return func(*args, **kwargs)

    return wrapper


#: where --precision waits on the click context for resolve_config / edit_settings
PRECISION_KEY = "counterface.precision"


def _precision() -> str | None:
    ctx = click.get_current_context(silent=True)
    return None if ctx is None else ctx.meta.get(PRECISION_KEY)


def resolve_config(preset, config_file, components, sets, edit=None) -> dict[str, Any]:
    """The resolved configuration of :func:`pipeline_options` (``--precision`` as edit.precision)."""
    from .. import config

    edit = dict(edit or {})
    if _precision() is not None:
        edit["precision"] = _precision()
    return config.resolve(preset=preset, config_file=config_file, components=components, sets=sets, edit=edit)


ALPHA_HELP = ("Strength of the operators that use one (default: the preset's); one value, or one per --direction "
              "(repeat the option), or auto: per face, the smallest alpha whose output reaches --target-score on "
              "the --scorer. A sweep is --alphas.")
ALPHAS_HELP = "A sweep: comma-separated strengths, one output per value, each for every direction."


def edit_flags(face=None, min_face=None, seed=None, layers=None, reference=(), references=None,
               reference_column=None, matcher=None, match_threshold=None) -> dict[str, Any]:
    """The [edit] values of the editing commands' own flags (None: not given)."""
    out: dict[str, Any] = {"face": face, "min_face": min_face, "layers": layers, "matcher": matcher,
                           "match_threshold": None if match_threshold is None else float(match_threshold),
                           "seed": None if seed is None else int(seed), "reference_column": reference_column}
    if reference:  # --face match: the person's photo(s), as absolute paths in the sidecar
        out["reference"] = [str(Path(r).expanduser().absolute()) for r in reference]
    if references is not None:
        out["references"] = str(Path(references).absolute())
    return out


def edit_settings(preset, config_file, components, sets, operator_settings=None, *, edit=None, alpha=None,
                  alphas=None, roles=("pi1", "pi0")):
    """The one :class:`~counterface.settings.EditSettings` of an editing command, from
    :func:`pipeline_options`, :func:`operator_options` and the command's own flags (``edit``: [edit]
    keys; ``alpha``: the ``--alpha`` values; ``alphas``: ``--alphas``), validated once."""
    from ..settings import EditSettings

    ops = dict(operator_settings or {})
    return EditSettings.resolve(preset=preset, config_file=config_file, components=components, sets=sets,
                                edit=edit, alpha=alpha, alphas=alphas, distance=ops.get("distance") or (),
                                keep=ops.get("keep") or (), watch=ops.get("watch") or (),
                                target_score=ops.get("target_score"), precision=_precision(), roles=roles)


def progress_enabled() -> bool:
    """Progress bars go to stderr when it is a terminal, unless COUNTERFACE_PROGRESS says otherwise."""
    env = os.environ.get("COUNTERFACE_PROGRESS")
    if env is not None:
        return env not in ("0", "false", "no", "")
    return sys.stderr.isatty()


def operator_options(func: Callable) -> Callable:
    """Options of the counterfactual operators and attributes (edit, pairs, sweep, batch):
    --distance, --keep, --watch, --target-score. The command receives them as one dict,
    ``operator_settings``; :func:`edit_settings` folds it into the settings."""
    opts = [
        click.option("--distance", "distance", type=finite(*ranges.bounds("distance")), multiple=True, metavar="D",
                     help="Target signed distance of the on/off operator (default: the boundary's on_distance / "
                          "off_distance); one for all, or one per --direction."),
        click.option("--keep", multiple=True, metavar="NAME",
                     help="Attribute whose signed distance the edit must not change (conditioning; repeatable)."),
        click.option("--watch", multiple=True, metavar="NAME",
                     help="Attribute whose leakage n.(w1 - w0) is recorded as leakage_<attribute> (repeatable)."),
        click.option("--target-score", type=finite(), default=None, metavar="S",
                     help="With --alpha auto: the scorer's value to reach (the smallest alpha that does is used)."),
    ]
    for opt in reversed(opts):
        func = opt(func)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        kwargs["operator_settings"] = {k: kwargs.pop(k) for k in ("distance", "keep", "watch", "target_score")}
        return func(*args, **kwargs)

    return wrapper

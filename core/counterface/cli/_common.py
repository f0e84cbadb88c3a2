"""Shared CLI plumbing: one-line errors, component-choice options, progress bars."""

from __future__ import annotations

import functools
import os
import sys
from typing import Any, Callable

import click

from ..errors import CounterfaceError

COMPONENT_OPTIONS = ("aligner", "inverter", "tuner", "direction", "blender", "generator", "identity", "pi0")


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

        pm = plugins.get_plugin_manager()
        for impl in pm.hook.register_commands.get_hookimpls():
            try:
                impl.function(cli=self)
            except Exception as exc:  # noqa: BLE001
                plugins.record_failure(impl.plugin_name, f"register_commands: {type(exc).__name__}: {exc}")

    def list_commands(self, ctx):
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx, cmd_name):
        self._load_plugin_commands()
        return super().get_command(ctx, cmd_name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.ClickException as exc:  # `counterface --bogus`: one line, not click's usage block
            _fail(f"error: {click_message(exc)}", exc.exit_code)

    def invoke(self, ctx: click.Context) -> Any:
        try:
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
    ]
    for kind in COMPONENT_OPTIONS:
        opts.append(click.option(f"--{kind}", f"comp_{kind}", default=None, metavar="NAME",
                                 help=f"Choose the {kind} by name (see `counterface plugins`)."))
    for opt in reversed(opts):
        func = opt(func)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        components = {k: kwargs.pop(f"comp_{k}") for k in COMPONENT_OPTIONS}
        kwargs["components"] = components
        return func(*args, **kwargs)

    return wrapper


def resolve_config(preset, config_file, components, sets, edit=None) -> dict[str, Any]:
    from .. import config

    return config.resolve(preset=preset, config_file=config_file, components=components, sets=sets, edit=edit)


def progress_enabled() -> bool:
    """Progress bars go to stderr when it is a terminal, unless COUNTERFACE_PROGRESS says otherwise."""
    env = os.environ.get("COUNTERFACE_PROGRESS")
    if env is not None:
        return env not in ("0", "false", "no", "")
    return sys.stderr.isatty()

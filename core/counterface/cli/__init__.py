"""The ``counterface`` command line: a thin layer over the Python API.

Each sub-command lives in its own module here; plugins add more through ``register_commands``.
"""

from __future__ import annotations

import importlib

import click

from ._common import CounterfaceGroup

#: sub-command modules of core; each exposes click commands named ``*_cmd``: polarization is rho_T
#: from the pairs, report the HTML review page, pivots the batch pivot store
_MODULES = ("info", "weights", "batch", "align", "edit", "directions", "polarization", "report", "pivots")


@click.group(cls=CounterfaceGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="counterface")
@click.option("--threads", envvar="COUNTERFACE_THREADS", default="auto", show_default=True, metavar="N|auto",
              help="CPU threads for torch. auto: 1 on machines with 2 cores or fewer (measured faster there), "
                   "else torch's default. Env: COUNTERFACE_THREADS.")
@click.option("--disable-plugin", "disabled_plugins", multiple=True, metavar="NAME",
              help="Do not load the plugin NAME (its entry-point name, reference plugins included; repeatable). "
                   "Env: COUNTERFACE_DISABLE_PLUGINS (comma-separated); COUNTERFACE_PLUGINS=a,b loads only those "
                   "of the third-party plugins.")
def cli(threads: str, disabled_plugins: tuple[str, ...] = ()) -> None:
    """Counterfactual face-attribute editing (SmileGAN-PTI and plugins)."""
    _set_threads(threads)


def _set_threads(spec: str) -> None:
    """Apply ``--threads`` before any torch work (torch is imported only if it is needed)."""
    import os

    from ..errors import ConfigError

    if spec in (None, "", "auto"):
        n = 1 if (os.cpu_count() or 1) <= 2 else None
    else:
        try:
            n = int(spec)
        except ValueError:
            raise ConfigError(f"--threads expects a positive integer or auto, got {spec!r}") from None
        if n < 1:
            raise ConfigError(f"--threads expects a positive integer or auto, got {spec!r}")
    if n is not None:
        import torch

        torch.set_num_threads(n)


for _mod_name in _MODULES:
    _mod = importlib.import_module(f"{__name__}.{_mod_name}")
    for _k, _v in sorted(vars(_mod).items()):
        if _k.endswith("_cmd") and isinstance(_v, click.Command):
            cli.add_command(_v)


def main(argv=None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="counterface")

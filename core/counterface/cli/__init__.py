"""The ``counterface`` command line: a thin layer over the Python API.

Each sub-command lives in its own module here; plugins add more through ``register_commands``.
"""

from __future__ import annotations

import importlib

import click

from ._common import CounterfaceGroup

#: sub-command modules of core; each exposes click commands named ``*_cmd``
_MODULES = ("info", "weights", "batch", "align", "edit")


@click.group(cls=CounterfaceGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="counterface")
def cli() -> None:
    """Counterfactual face-attribute editing (SmileGAN-PTI and plugins)."""


for _mod_name in _MODULES:
    _mod = importlib.import_module(f"{__name__}.{_mod_name}")
    for _k, _v in sorted(vars(_mod).items()):
        if _k.endswith("_cmd") and isinstance(_v, click.Command):
            cli.add_command(_v)


def main(argv=None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="counterface")

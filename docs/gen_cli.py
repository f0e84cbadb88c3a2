"""Regenerate docs/cli.md from the click commands: ``python docs/gen_cli.py``.

tests/core/test_docs.py fails when docs/cli.md is out of date, so the CLI reference never drifts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

HEADER = """# CLI reference

Generated from the commands themselves by `python docs/gen_cli.py` (a test keeps it current).
Every command composes the Python API; components are chosen by name (`--aligner`, `--tuner`, ...)
and parameters by `--set kind.param=value` or a TOML `--config` file with the same keys
(see docs/architecture.md). Exit codes: 0 success, 1 internal error, 2 usage or configuration
error, 3 no face found, 4 weights missing or invalid, 130 interrupted.

## TOML configuration

```toml
preset = "smilegan-pti"      # optional; default smilegan-pti

[aligner]
name = "dlib"                # same as --aligner dlib

[tuner]
tune_steps = 100             # same as --set tuner.tune_steps=100
lambda_region = 0.5

[edit]
alpha = 1.5                  # pipeline settings: alpha, layers, face, min_face, seed, device
layers = "4-6"
```

Precedence, lowest first: preset, `--config` file, `--<kind> NAME`, `--set`. Choosing another
component name drops the parameters given for the old one.

## Choosing the face: `--face match`

`--face largest` (default), `all`, an index, or `match`: the face of the person in a reference photo
(`--reference PHOTO`, repeatable; in `batch` also a manifest column `reference` or `--references DIR
--reference-column COLUMN`). The matcher (`--matcher NAME`, default the preset's: `dlib` in the reference presets, offline) embeds every
face and the reference; the most similar face is edited, and below `--match-threshold` (default the
matcher's, 0.92 for dlib) the photo fails with `target_not_found` (exit 3; a failure row in a
batch). Sidecars record `match` (similarity, threshold, recogniser, references, every face's
similarity). See docs/batch.md.

## Independent identity: `identity_independent`

`batch` and `evaluate` measure identity twice: `identity*` with the pipeline's ArcFace (the network
the tuner optimised) and `identity_independent*` with `--identity-independent NAME` (default `dlib`'s
ResNet face descriptor, which the tuner never saw), each for Z1 vs Z, Z0 vs Z (`_z0`) and Z1 vs Z0
(`_z1z0`). `evaluate` lists the pairs below `--identity-threshold` (0.5) or
`--identity-independent-threshold` (0.92) under `flags` in summary.json. Tables: results.csv and
results.parquet (typed).
"""


def _settings_sections() -> str:
    """The strengths and the contradictions, from the tables in code (counterface.contradictions)."""
    from counterface.contradictions import markdown

    return f"""
## Strengths: `--alpha` and `--alphas`

`--alpha A` is one strength for every edited direction, or one per `--direction` (repeat the option
in the same order), or `auto` (per face, the smallest alpha whose Z1 reaches `--target-score` on the
`--scorer`); it means the same in `edit`, `pairs` and `batch`. `--alphas A,B,...` is a sweep: one
output (`sweep`) or one result row (`batch`) per value, each value for every direction. The old batch
spelling `--alpha 0,1,2` (or a repeated `--alpha` with one direction) stops with one line that says
to type `--alphas 0,1,2`.

## Options that cannot go together

Each pair below stops the command before anything is loaded, with one line and exit status 2.

{markdown()}
"""


def _walk(cmd: click.Command, path: list[str]):
    yield path, cmd
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd, info_name=path[-1], help_option_names=["-h", "--help"])
        for name in cmd.list_commands(ctx):
            yield from _walk(cmd.get_command(ctx, name), path + [name])


def render() -> str:
    from counterface.cli import cli

    out = [HEADER, _settings_sections()]
    for path, cmd in _walk(cli, ["counterface"]):
        ctx = click.Context(cmd, info_name=" ".join(path), terminal_width=100, max_content_width=100,
                            help_option_names=["-h", "--help"])
        title = " ".join(path)
        out.append(f"\n## `{title}`\n\n```\n{cmd.get_help(ctx).rstrip()}\n```\n")
    return "".join(out)


if __name__ == "__main__":
    target = Path(__file__).with_name("cli.md")
    target.write_text(render())
    print(f"wrote {target}", file=sys.stderr)

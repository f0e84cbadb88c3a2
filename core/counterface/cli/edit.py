"""`counterface edit`, `counterface pairs` and `counterface sweep`: photos -> counterfactual images.

Every image written has a JSON sidecar next to it (same name, ``.json``): input path and sha256,
face index and alignment matrix, every component with its package version and parameters, the
edit settings and seed, per-stage seconds and the losses at the end of each tuning stage.

Output names (in ``-o/--out``, default ``counterface-out``)::

    edit   <stem>_face<i>_z1.png                               (Z1 = pi_1(Z))
    pairs  <stem>_face<i>_z1.png   <stem>_face<i>_z0.png      (Z1 = pi_1(Z), Z0 = pi_0(Z))
    sweep  <stem>_face<i>_a<alpha>.png ... (alpha as +1, -0.5)   <stem>_face<i>_sweep.png (contact strip)

A photo that fails (unreadable, no face) is reported on one line and the others go on; the exit
status is then that error's (3 for no face). Configuration and weights problems are found before
the first photo (every component is built first) and stop the command with one line. Inputs are
never overwritten.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from .. import flow
from ..errors import ConfigError, CounterfaceError
from ._common import (
    ALPHA_HELP,
    ALPHAS_HELP,
    check_output_dir,
    edit_flags,
    edit_settings,
    finite,
    is_photo_error,
    operator_options,
    photo_error,
    pipeline_options,
    progress_enabled,
)

DEFAULT_OUT = "counterface-out"


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def alpha_tag(alpha: float) -> str:
    """File-name tag of an alpha: ``+1``, ``-0.5``, ``+0``."""
    return f"a{alpha:+g}"


class _TuneBar:
    """A tqdm bar per tuning stage showing the current losses (only when progress is enabled)."""

    def __init__(self, label: str):
        self.label = label
        self.bar = None
        self.stage = None

    def __call__(self, info: dict[str, Any]) -> None:
        from tqdm import tqdm

        if info.get("stage") != self.stage:
            self.close()
            self.stage = info.get("stage")
            self.bar = tqdm(total=int(info.get("steps") or 0), desc=f"{self.label} {self.stage}", file=sys.stderr,
                            leave=False, dynamic_ncols=True)
        losses = {k: f"{v:.4f}" for k, v in info.items() if k not in ("stage", "step", "steps")}
        self.bar.set_postfix(losses, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _pivot_path(template: str, stem: str, face: int, several: bool) -> Path:
    if several and not ("{stem}" in template and "{face}" in template):
        raise ConfigError("--save-pivot with several photos or faces needs {stem} and {face} in the path, "
                          "e.g. pivots/{stem}_face{face}.safetensors")
    return Path(template.format(stem=stem, face=face))


class _PivotFile(flow.PivotSource):
    """``--pivot FILE`` (one pivot, checked against the photo) or ``--save-pivot PATH``."""

    def __init__(self, pipe, load: str | None, save: str | None, inputs: list[Path]):
        from .. import pivot as pivot_mod

        self.load, self.save, self.inputs = load, save, inputs
        self.loaded = pivot_mod.load_pivot(load) if load else None
        self.several = len(inputs) > 1
        self.used: str | None = None

    def check(self, photo: flow.Photo, faces: list) -> None:
        if self.loaded is not None and len(faces) > 1:
            raise ConfigError("--pivot holds one face; choose it with --face N")
        self.several = len(self.inputs) > 1 or len(faces) > 1

    def get(self, photo, face, index):
        if self.loaded is None:
            self.used = None
            return None
        src = self.loaded.meta.get("source") or {}
        if src.get("input_sha256") not in (None, photo.sha256):
            raise ConfigError(f"--pivot {self.load} was made from another photo (sha256 {src['input_sha256'][:12]}...)")
        self.used = str(self.load)
        return self.loaded, {}, "loaded"

    def put(self, photo, face, index, pivot):
        if self.save:
            from .. import pivot as pivot_mod

            target = _pivot_path(self.save, photo.path.stem, index, self.several)
            self.used = str(pivot_mod.save_pivot(pivot, target, inputs=self.inputs))
            click.echo(self.used)
        return pivot


def _run(pipe, images: tuple[str, ...], out_dir: Path, write, *, pivot_file: str | None,
         save_pivot: str | None) -> None:
    """The per-photo flow (:mod:`counterface.flow`) over ``images``; ``write(result, files)`` writes
    a face's outputs. A photo that fails is reported and the others go on."""
    inputs = [Path(p) for p in images]
    if pivot_file and len(inputs) > 1:
        raise ConfigError("--pivot applies to one photo; give a single IMAGE")
    if pivot_file and save_pivot:
        raise ConfigError("--pivot and --save-pivot together make no sense: the pivot already exists")
    check_output_dir(out_dir)
    source = _PivotFile(pipe, pivot_file, save_pivot, inputs)
    pipe.prepare(with_pivot=source.loaded is not None)
    if source.loaded is not None:
        pipe.check_pivot(source.loaded)
    files = _Files(out_dir, inputs)
    progress = (lambda label: _TuneBar(label)) if progress_enabled() else None
    failures: list[CounterfaceError] = []
    for path in inputs:
        try:
            for result in flow.iter_faces(pipe, path, pivots=source, progress=progress, check=source.check):
                write(result, files.bind(f"{path.stem}_face{result.index}", source.used))
        except CounterfaceError as exc:
            if not is_photo_error(exc):
                raise  # every other photo would fail the same way: one line, stop
            photo_error(path, exc)
            failures.append(exc)
    if failures:
        sys.exit(failures[0].exit_code)


class _Files:
    """Writes a face's outputs as ``OUT/<stem>_face<i><suffix>.png`` + ``.json``, echoing each path."""

    def __init__(self, out_dir: Path, inputs: list[Path]):
        self.out_dir, self.inputs = out_dir, inputs
        self.stem, self.pivot_file = "", None

    def bind(self, stem: str, pivot_file: str | None) -> "_Files":
        self.stem, self.pivot_file = stem, pivot_file
        return self

    def __call__(self, suffix: str, image: np.ndarray, sidecar: dict[str, Any], **fields: Any) -> Path:
        out = flow.write_output(self.out_dir, f"{self.stem}{suffix}", image, sidecar, inputs=self.inputs,
                                pivot_file=self.pivot_file, **fields)
        click.echo(str(out))
        return out


def _strip(images: list[np.ndarray], mask: np.ndarray, height: int = 256) -> np.ndarray:
    """Side-by-side crops of the edited region (bounding box of mask > 0, 10% margin), ``height`` px high."""
    import cv2

    ys, xs = np.nonzero(mask > 0)
    h, w = mask.shape
    if len(xs) == 0:
        y0, y1, x0, x1 = 0, h, 0, w
    else:
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        my, mx = int(0.1 * (y1 - y0)), int(0.1 * (x1 - x0))
        y0, y1, x0, x1 = max(0, y0 - my), min(h, y1 + my), max(0, x0 - mx), min(w, x1 + mx)
    width = max(1, round(height * (x1 - x0) / max(1, y1 - y0)))
    tiles = [cv2.resize(np.ascontiguousarray(im[y0:y1, x0:x1]), (width, height), interpolation=cv2.INTER_AREA)
             for im in images]
    return np.ascontiguousarray(np.concatenate(tiles, axis=1))


def _common_options(func):
    opts = [
        click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False)),
        click.option("-o", "--out", "out_dir", default=DEFAULT_OUT, show_default=True, type=click.Path(file_okay=False),
                     help="Output folder (created if needed)."),
        click.option("--layers", default=None, help="W+ rows to edit: 4-6, 0,2,5-7 or all (default: the direction's)."),
        click.option("--face", default=None,
                     help="largest (default), all, a 0-based index (largest first), or match (the "
                          "--reference's person)."),
        click.option("--reference", multiple=True, type=click.Path(exists=True), metavar="PHOTO",
                     help="--face match: a photo (or folder of photos) of the person to edit; repeatable."),
        click.option("--matcher", default=None, metavar="NAME",
                     help="--face match: the identity component that compares faces (default: the preset's)."),
        click.option("--match-threshold", type=finite(), default=None, metavar="T",
                     help="--face match: lowest cosine similarity to the reference (default: the matcher's own); "
                          "below it the photo fails with target_not_found."),
        click.option("--seed", type=int, default=None, help="Seed of every random choice (default 0)."),
        click.option("--pivot", "pivot_file", default=None, type=click.Path(dir_okay=False),
                     help="Reuse a pivot saved with --save-pivot instead of inverting and tuning again."),
        click.option("--save-pivot", default=None, metavar="PATH",
                     help="Save the tuned pivot (safetensors); use {stem} and {face} for several faces."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return operator_options(pipeline_options(func))


def _pipeline(preset, config_file, components, sets, operator_settings, *, roles, alpha=None, alphas=None, **flags):
    from ..pipeline import Pipeline

    return Pipeline(edit_settings(preset, config_file, components, sets, operator_settings, edit=edit_flags(**flags),
                                  alpha=alpha, alphas=alphas, roles=roles))


def _warn_auto(result: flow.FaceResult, step: flow.Step) -> None:
    found = step.auto.get("alpha_auto")
    if found and not found.get("reached"):
        click.echo(f"warning: {result.photo.path} face {result.index}: no alpha in {list(found['bounds'])} reaches "
                   f"score {found['target_score']} (reached {found['score']:.4g}); used {found['alpha']}", err=True)


# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------
@click.command("edit")
@_common_options
@click.option("--alpha", "alpha_values", multiple=True, metavar="A|auto", help=ALPHA_HELP)
def edit_cmd(images, out_dir, pivot_file, save_pivot, alpha_values, preset, config_file, sets,
             components, operator_settings, **flags) -> None:
    """pi_1: edit the attribute of the face(s) in each IMAGE and paste back (IMAGE_face<i>_z1.png + .json)."""
    pipe = _pipeline(preset, config_file, components, sets, operator_settings, roles=("pi1",), alpha=alpha_values,
                     **flags)

    def write(result: flow.FaceResult, files: _Files) -> None:
        step = result.steps[0]
        _warn_auto(result, step)
        files("_z1", step.results["z1"].image, step.sidecars["z1"])

    _run(pipe, images, Path(out_dir), write, pivot_file=pivot_file, save_pivot=save_pivot)


@click.command("pairs")
@_common_options
@click.option("--alpha", "alpha_values", multiple=True, metavar="A|auto", help=ALPHA_HELP)
def pairs_cmd(images, out_dir, pivot_file, save_pivot, alpha_values, preset, config_file, sets,
              components, operator_settings, **flags) -> None:
    """pi_1 and pi_0 of each face: IMAGE_face<i>_z1.png and _z0.png (+ .json); --pi1/--pi0 pick the operators."""
    pipe = _pipeline(preset, config_file, components, sets, operator_settings, roles=("pi1", "pi0"),
                     alpha=alpha_values, **flags)

    def write(result: flow.FaceResult, files: _Files) -> None:
        step = result.steps[0]
        _warn_auto(result, step)
        pair = {"z1": f"{files.stem}_z1.png", "z0": f"{files.stem}_z0.png"}
        for role in ("z1", "z0"):
            files(f"_{role}", step.results[role].image, step.sidecars[role], pair=pair)

    _run(pipe, images, Path(out_dir), write, pivot_file=pivot_file, save_pivot=save_pivot)


@click.command("sweep")
@_common_options
@click.option("--alphas", default="-2,-1,0,1,2", show_default=True, help=ALPHAS_HELP)
def sweep_cmd(images, out_dir, pivot_file, save_pivot, alphas, preset, config_file, sets,
              components, operator_settings, **flags) -> None:
    """One tuning, one pi_1 image per alpha (IMAGE_face<i>_a<alpha>.png) plus a contact strip (_sweep.png)."""
    pipe = _pipeline(preset, config_file, components, sets, operator_settings, roles=("pi1",), alphas=alphas, **flags)
    values = list(pipe.settings.alphas)

    def write(result: flow.FaceResult, files: _Files) -> None:
        names = []
        for step in result.steps:
            tag = f"_{alpha_tag(step.alpha)}"
            files(tag, step.results["z1"].image, step.sidecars["z1"], sweep=values)
            names.append(f"{files.stem}{tag}.png")
        strip = _strip([s.results["z1"].image for s in result.steps], pipe.mask(result.photo.image, result.face))
        side = pipe.sidecar(input_path=result.photo.path, input_sha256=result.photo.sha256, face=result.face,
                            role="sweep", pivot=result.pivot, seconds=result.seconds,
                            extra={"match": result.match.to_json()} if result.match is not None else None)
        files("_sweep", strip, side, sweep=values, tiles=names)

    _run(pipe, images, Path(out_dir), write, pivot_file=pivot_file, save_pivot=save_pivot)

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
from typing import Any, Callable

import click
import numpy as np

from .. import matching, ranges
from ..errors import ConfigError, CounterfaceError
from ._common import (
    apply_operator_settings,
    check_output_dir,
    finite,
    is_photo_error,
    operator_options,
    parse_alpha_option,
    photo_error,
    pipeline_options,
    progress_enabled,
    resolve_config,
)

DEFAULT_OUT = "counterface-out"


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def parse_alphas(text: str) -> list[float]:
    """``'-2,-1,0,1,2'`` -> [-2.0, -1.0, 0.0, 1.0, 2.0] (order kept, duplicates refused)."""
    try:
        vals = [float(x) for x in text.replace(" ", "").split(",") if x != ""]
    except ValueError:
        raise ConfigError(f"invalid --alphas {text!r}; use comma-separated numbers, e.g. -2,-1,0,1,2") from None
    if not vals:
        raise ConfigError("--alphas needs at least one value")
    if len(set(vals)) != len(vals):
        raise ConfigError(f"--alphas {text!r} repeats a value")
    if not all(np.isfinite(vals)):
        raise ConfigError(f"--alphas {text!r} must be finite numbers")
    return ranges.check_alpha(vals, "--alphas")


def alpha_tag(alpha: float) -> str:
    """File-name tag of an alpha: ``+1``, ``-0.5``, ``+0``."""
    return f"a{alpha:+g}"


def _edit_overrides(alpha=None, layers=None, face=None, seed=None, reference=(), matcher=None,
                    match_threshold=None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if reference:  # --face match: the person's photo(s), as absolute paths in the sidecar
        out["reference"] = [str(Path(r).expanduser().absolute()) for r in reference]
    if matcher is not None:
        out["matcher"] = matcher
    if match_threshold is not None:
        out["match_threshold"] = float(match_threshold)
    if alpha is not None:
        out["alpha"] = alpha if isinstance(alpha, (str, list)) else float(alpha)
    if layers is not None:
        out["layers"] = layers
    if face is not None:
        out["face"] = face
    if seed is not None:
        out["seed"] = int(seed)
    return out


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


def _prepare(pipe, *, with_pivot: bool) -> None:
    """Build the components and check the edit settings before the first photo, so that a
    configuration or weights problem fails once and at once, not per photo after minutes of tuning.
    With a saved pivot, the inverter, tuner and identity network are not needed and not built."""
    from .. import config as config_mod
    from ..registry import SECTIONS

    face = pipe.edit.get("face")
    if face not in (None, "largest", "all", "match"):
        try:
            int(face)
        except (TypeError, ValueError):
            raise ConfigError(f"invalid --face {face!r}; use largest, all, match or a 0-based index") from None
    ranges.check_edit(pipe.edit)  # alpha, alpha_bounds, match_threshold from --set / TOML within range
    matching.prepare(pipe)  # --face match: the matcher, its threshold and the reference's faces, before any photo
    pipe.check_operators()  # --pi1 on with a direction that has no intercept: one line, before any weights
    skip = {"inverter", "tuner", "identity"} if with_pivot else set()
    for section in SECTIONS:
        if section not in skip and pipe.has(section):
            pipe.component(section)
    config_mod.parse_layers(pipe.edit["layers"], getattr(pipe.generator, "num_ws", None))
    for role in ("pi1", "pi0"):
        pipe.operator(role)
    pipe.kept_attributes()
    pipe.watched_attributes()
    if pipe.edit.get("alpha") == "auto":
        pipe.scorer()
        if pipe.edit.get("target_score") is None:
            raise ConfigError("--alpha auto needs --target-score T (the scorer's value to reach)")


def _run(pipe, images: tuple[str, ...], out_dir: Path, produce: Callable, *, pivot_file: str | None,
         save_pivot: str | None) -> None:
    """Read, align, invert + tune (or load a pivot) for every selected face, then ``produce`` outputs."""
    from .. import pivot as pivot_mod
    from ..imageio import file_sha256, read_image
    from ..provenance import Timer

    inputs = [Path(p) for p in images]
    if pivot_file and len(inputs) > 1:
        raise ConfigError("--pivot applies to one photo; give a single IMAGE")
    if pivot_file and save_pivot:
        raise ConfigError("--pivot and --save-pivot together make no sense: the pivot already exists")
    check_output_dir(out_dir)
    loaded = pivot_mod.load_pivot(pivot_file) if pivot_file else None
    _prepare(pipe, with_pivot=loaded is not None)
    if loaded is not None:
        pipe.check_pivot(loaded)
    failures: list[CounterfaceError] = []
    for path in inputs:
        try:
            t = Timer()
            with t("read"):
                photo = read_image(path)
                sha = file_sha256(path)
            with t("align"):
                faces = pipe.faces(photo)
            if loaded is not None and len(faces) > 1:
                raise ConfigError("--pivot holds one face; choose it with --face N")
            several = len(inputs) > 1 or len(faces) > 1
            for face in faces:
                seconds = dict(t.seconds)
                if loaded is not None:
                    pivot_mod.check_reuse(loaded, pivot_file, photo_sha256=sha)  # finite, this photo's
                    pivot, used = loaded, str(pivot_file)
                else:
                    bar = _TuneBar(f"{path.name} face{face.index}") if progress_enabled() else None
                    try:
                        pivot, pseconds = pipe.pivot(face, progress=bar)
                    finally:
                        if bar is not None:
                            bar.close()
                    seconds.update(pseconds)
                    pivot.meta["source"] = {"input": str(path), "input_sha256": sha, "face_index": face.index}
                    used = None
                    if save_pivot:
                        target = _pivot_path(save_pivot, path.stem, face.index, several)
                        used = str(pivot_mod.save_pivot(pivot, target, inputs=inputs))
                        click.echo(used)
                ctx = {"path": path, "sha": sha, "photo": photo, "face": face, "pivot": pivot, "seconds": seconds,
                       "pivot_file": used, "inputs": inputs, "out": out_dir,
                       "stem": f"{path.stem}_face{face.index}", "match": pipe.last_match}
                produce(ctx)
        except CounterfaceError as exc:
            if not is_photo_error(exc):
                raise  # every other photo would fail the same way: one line, stop
            photo_error(path, exc)
            failures.append(exc)
    if failures:
        sys.exit(failures[0].exit_code)


def _write(pipe, ctx: dict, name: str, image: np.ndarray, *, role: str, alpha: Any,
           seconds: dict[str, float], extra: dict[str, Any] | None = None,
           attributes: list[dict[str, Any]] | None = None) -> Path:
    from ..imageio import write_image, write_json

    out = write_image(f"{name}.png", image, out_dir=ctx["out"], inputs=ctx["inputs"])
    side = pipe.sidecar(input_path=ctx["path"], input_sha256=ctx["sha"], face=ctx["face"], alpha=alpha, role=role,
                        pivot=ctx["pivot"], seconds=seconds, attributes=attributes,
                        extra={"output": out.name, "pivot_file": ctx["pivot_file"], **(extra or {}),
                               **({"match": ctx["match"].to_json()} if ctx.get("match") else {})})
    write_json(f"{name}.json", side, out_dir=ctx["out"], inputs=ctx["inputs"])
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
                     help="--face match: the identity component that compares faces (default dlib)."),
        click.option("--match-threshold", type=finite(), default=None, metavar="T",
                     help="--face match: lowest cosine similarity to the reference (default: the matcher's, 0.92 "
                          "for dlib); below it the photo fails with target_not_found."),
        click.option("--seed", type=int, default=None, help="Seed of every random choice (default 0)."),
        click.option("--pivot", "pivot_file", default=None, type=click.Path(dir_okay=False),
                     help="Reuse a pivot saved with --save-pivot instead of inverting and tuning again."),
        click.option("--save-pivot", default=None, metavar="PATH",
                     help="Save the tuned pivot (safetensors); use {stem} and {face} for several faces."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return operator_options(pipeline_options(func))


def _pipeline(preset, config_file, components, sets, operator_settings=None, **edit):
    from ..pipeline import Pipeline

    cfg = resolve_config(preset, config_file, components, sets, edit=_edit_overrides(**edit))
    return Pipeline.from_config(apply_operator_settings(cfg, operator_settings))


def _alpha_for(pipe, ctx) -> tuple[Any, dict[str, Any]]:
    """The alpha of this face (``--alpha auto``: searched with the scorer) and the sidecar fields."""
    if pipe.edit.get("alpha") != "auto":
        return None, {}
    found = pipe.auto_alpha(ctx["photo"], ctx["face"], ctx["pivot"])
    if not found.reached:
        click.echo(f"warning: {ctx['path']} face {ctx['face'].index}: no alpha in {list(found.bounds)} reaches "
                   f"score {found.target} (reached {found.score:.4g}); used {found.alpha}", err=True)
    return found.alpha, {"alpha_auto": found.to_json()}


def _leakage_fields(pipe, pivot, z1, z0=None) -> dict[str, Any]:
    return pipe.leakage(pivot, z1, z0)


_ALPHA_HELP = ("Strength of the shift/negate operators (default: the preset's, 1.0); repeat once per --direction, "
               "or auto: per face, the smallest alpha whose output reaches --target-score on the --scorer.")


# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------
@click.command("edit")
@_common_options
@click.option("--alpha", "alpha_values", multiple=True, metavar="A|auto", help=_ALPHA_HELP)
def edit_cmd(images, out_dir, layers, face, seed, pivot_file, save_pivot, alpha_values, preset, config_file, sets,
             components, operator_settings, **match) -> None:
    """pi_1: edit the attribute of the face(s) in each IMAGE and paste back (IMAGE_face<i>_z1.png + .json)."""
    pipe = _pipeline(preset, config_file, components, sets, operator_settings, alpha=parse_alpha_option(alpha_values),
                     layers=layers, face=face, seed=seed, **match)

    def produce(ctx):
        alpha, auto = _alpha_for(pipe, ctx)
        res = pipe.pi1(ctx["photo"], ctx["face"], ctx["pivot"], alpha)
        _write(pipe, ctx, f"{ctx['stem']}_z1", res.image, role="z1", alpha=res.alpha,
               seconds={**ctx["seconds"], **res.meta["seconds"]}, attributes=res.meta["attributes"],
               extra={**auto, **_leakage_fields(pipe, ctx["pivot"], res)})

    _run(pipe, images, Path(out_dir), produce, pivot_file=pivot_file, save_pivot=save_pivot)


@click.command("pairs")
@_common_options
@click.option("--alpha", "alpha_values", multiple=True, metavar="A|auto", help=_ALPHA_HELP)
def pairs_cmd(images, out_dir, layers, face, seed, pivot_file, save_pivot, alpha_values, preset, config_file, sets,
              components, operator_settings, **match) -> None:
    """pi_1 and pi_0 of each face: IMAGE_face<i>_z1.png and _z0.png (+ .json); --pi1/--pi0 pick the operators."""
    pipe = _pipeline(preset, config_file, components, sets, operator_settings, alpha=parse_alpha_option(alpha_values),
                     layers=layers, face=face, seed=seed, **match)

    def produce(ctx):
        alpha, auto = _alpha_for(pipe, ctx)
        z1 = pipe.pi1(ctx["photo"], ctx["face"], ctx["pivot"], alpha)
        z0 = pipe.pi0(ctx["photo"], ctx["face"], ctx["pivot"], alpha)
        pair = {"z1": f"{ctx['stem']}_z1.png", "z0": f"{ctx['stem']}_z0.png"}
        common = {"pair": pair, **auto, **_leakage_fields(pipe, ctx["pivot"], z1, z0)}
        _write(pipe, ctx, f"{ctx['stem']}_z1", z1.image, role="z1", alpha=z1.alpha,
               seconds={**ctx["seconds"], **z1.meta["seconds"]}, attributes=z1.meta["attributes"], extra=common)
        _write(pipe, ctx, f"{ctx['stem']}_z0", z0.image, role="z0", alpha=z1.alpha,
               seconds={**ctx["seconds"], **z0.meta["seconds"]}, attributes=z0.meta["attributes"], extra=common)

    _run(pipe, images, Path(out_dir), produce, pivot_file=pivot_file, save_pivot=save_pivot)


@click.command("sweep")
@_common_options
@click.option("--alphas", default="-2,-1,0,1,2", show_default=True, help="Comma-separated strengths.")
def sweep_cmd(images, out_dir, layers, face, seed, pivot_file, save_pivot, alphas, preset, config_file, sets,
              components, operator_settings, **match) -> None:
    """One tuning, one image per alpha (IMAGE_face<i>_a<alpha>.png) plus a contact strip (_sweep.png)."""
    values = parse_alphas(alphas)
    pipe = _pipeline(preset, config_file, components, sets, operator_settings, layers=layers, face=face, seed=seed,
                     **match)

    def produce(ctx):
        outs, names = [], []
        for a in values:
            res = pipe.render(ctx["photo"], ctx["face"], ctx["pivot"], a)
            name = f"{ctx['stem']}_{alpha_tag(a)}"
            _write(pipe, ctx, name, res.image, role="z1", alpha=a, seconds={**ctx["seconds"], **res.meta["seconds"]},
                   attributes=res.meta["attributes"],
                   extra={"sweep": values, **_leakage_fields(pipe, ctx["pivot"], res)})
            outs.append(res.image)
            names.append(f"{name}.png")
        strip = _strip(outs, pipe.mask(ctx["photo"], ctx["face"]))
        _write(pipe, ctx, f"{ctx['stem']}_sweep", strip, role="sweep", alpha=None, seconds=ctx["seconds"],
               extra={"sweep": values, "tiles": names})

    _run(pipe, images, Path(out_dir), produce, pivot_file=pivot_file, save_pivot=save_pivot)

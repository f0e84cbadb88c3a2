"""The attribute-field parts of `counterface directions`: learning a field (``learn --method mlp``),
``apply`` (operators on latents, no images) and the warnings of ``learn``.

Geometry in :mod:`counterface.field`, paths in :mod:`counterface.fieldpath`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import click
import numpy as np

from ..errors import ConfigError

#: below this cross-validated (else training) accuracy a learned direction is near chance
NEAR_CHANCE = 0.6


def check_learned(accuracy: float | None, train_accuracy: float, on: float, off: float,
                  conditioned_on: Sequence[str] = ()) -> None:
    """One warning line each for a below- or near-chance accuracy and a conditioned direction that
    lost its signal; ConfigError (nothing written) when positives end up below negatives."""
    acc = accuracy if accuracy is not None else train_accuracy
    what = "cross-validated" if accuracy is not None else "training"
    if not on > off:
        raise ConfigError(f"the fit puts the positive examples below the negative ones (on {on:.3g} <= off {off:.3g}, "
                          f"{what} accuracy {acc:.3f}): nothing written"
                          + (f"; conditioning on {', '.join(conditioned_on)} removed the signal" if conditioned_on else ""))
    if conditioned_on and acc < NEAR_CHANCE:
        click.echo(f"warning: conditioned on {', '.join(conditioned_on)}, the direction lost its signal "
                   f"({what} accuracy {acc:.3f}): the attributes are not separable from each other", err=True)
    elif acc < 0.5:
        click.echo(f"warning: {what} accuracy {acc:.3f} is below chance: the labels do not follow these latents",
                   err=True)
    elif acc < NEAR_CHANCE:
        click.echo(f"warning: {what} accuracy {acc:.3f} is near chance: the attribute is barely visible in these "
                   "latents", err=True)


def learn_field(x: np.ndarray, y: np.ndarray, ex: Any, widths: list[int], *, folds: int, seed: int,
                others: Sequence[np.ndarray], names: Sequence[str], attribute: str | None, family: str | None,
                rows: list[int] | None, out: Path, versions: dict[str, Any], threshold: Any,
                keep_extremes: Any) -> None:
    """``directions learn --method mlp``: fit, check, write the field and its JSON sidecar, summarise."""
    from .. import learn
    from ..field import save_field
    from ..imageio import write_json

    fit = learn.fit_field(x, y, hidden=widths, folds=folds, seed=seed, others=others)
    f = fit.field
    check_learned(fit.accuracy, fit.train_accuracy, f.on_distance, f.off_distance, names)
    f.attribute = attribute or ex.source.get("label") or ""
    f.family = family or ""
    f.layers = rows
    f.meta = {
        "method": "mlp", "n_positive": int((y == 1).sum()), "n_negative": int((y == 0).sum()),
        "accuracy": fit.accuracy, "accuracy_sd": fit.accuracy_sd, "folds": fit.folds if fit.accuracy is not None else None,
        "calibration": fit.calibration, "validation_accuracy": fit.validation_accuracy,
        "train_accuracy": fit.train_accuracy, "epochs": fit.epochs, "weight_decay": learn.FIELD_WEIGHT_DECAY,
        "label_noise": learn.FIELD_LABEL_NOISE,
        "conditioned_on": list(names), "label": ex.source.get("label"), "threshold": threshold,
        "keep_extremes": keep_extremes, "seed": seed,
        "provenance": {"input": ex.source, "skipped": len(ex.skipped), "versions": versions,
                       "fit": "attribute field on the mean of the chosen W+ rows"},
    }
    save_field(f, out)
    write_json(out.with_suffix(".json"), f.describe())
    acc = "not cross-validated" if fit.accuracy is None else \
        f"{fit.folds}-fold accuracy {fit.accuracy:.3f} +- {fit.accuracy_sd or 0:.3f}"
    click.echo(f"{f.attribute}: {f.meta['n_positive']} on, {f.meta['n_negative']} off; {acc}")
    click.echo(f"field logit: on {f.on_distance:+.3f}, off {f.off_distance:+.3f}; hidden {widths or 'none (linear)'}; "
               f"path step {f.step:.4g}")
    click.echo(f"wrote {out} (family {f.family or 'unknown'}, w_dim {f.w_dim}, layers "
               f"{'all' if rows is None else ','.join(map(str, rows))})")


# -- reading editors -------------------------------------------------------------------------------
def resolve_editor(spec: str, what: str = "--direction"):
    """A field or a boundary (:class:`~counterface.boundary.Boundary`) from a file, a name in the
    directions folder or a registered direction; every file is validated."""
    from .. import registry
    from ..boundary import find_boundary_file, load_boundary
    from ..field import is_field_file, load_field

    needs = None
    if spec in registry.entries("direction"):
        try:
            d = registry.create("direction", spec)
        except ConfigError as exc:  # a direction that needs parameters (a file): read spec as a file name
            needs = exc
        else:
            b = getattr(d, "field", None) or getattr(d, "boundary", None)
            if b is None:
                raise ConfigError(f"{what} {spec}: a third-party direction without a boundary")
            return b
    path = find_boundary_file(spec)
    if path is None and needs is not None:
        raise needs
    if path is None:
        if not Path(spec).exists():
            registry.entry("direction", spec)  # raises: unknown, listing the registered names
        raise ConfigError(f"{what} {spec}: not a boundary or field file (.safetensors, .pt, .npy)")
    return load_field(path) if is_field_file(path) else load_boundary(path)


def as_field(editor: Any, what: str):
    """A field for ``apply``: a field as it is, a boundary with one shared normal as its linear field."""
    from ..field import AttributeField

    if isinstance(editor, AttributeField):
        return editor
    if editor.intercept is None:
        return AttributeField.from_boundary(_with_zero_intercept(editor))
    if not editor.shared:
        raise ConfigError(f"{what}: a boundary with one normal per W+ row; apply needs a shared normal or a field")
    return AttributeField.from_boundary(editor)


def _with_zero_intercept(b):
    import torch

    from ..boundary import Boundary

    if not b.shared:
        raise ConfigError("a bare direction vector with one normal per row cannot be applied to latents")
    return Boundary(normal=b.normal, intercept=torch.zeros(1), attribute=b.attribute, family=b.family, layers=b.layers,
                    meta={**b.meta, "intercept_unknown": True})


def read_latents(path: Path, w_dim: int | None = None) -> np.ndarray:
    """The ``latents`` array of an ``.npz`` (float, (N, w_dim) or (N, num_ws, w_dim), finite); one line otherwise."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "latents" not in data.files:
                raise ConfigError(f"{path}: no array named 'latents' (found {', '.join(data.files) or 'none'})")
            lat = np.asarray(data["latents"])
    except FileNotFoundError:
        raise ConfigError(f"input not found: {path}") from None
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - zip, pickle and format errors come in many types
        raise ConfigError(f"{path}: not a readable .npz of latents ({' '.join(str(exc).split())[:100]})") from None
    if lat.ndim not in (2, 3) or lat.shape[0] == 0 or lat.dtype.kind != "f":
        raise ConfigError(f"{path}: latents must be float (N, w_dim) or (N, num_ws, w_dim), got {lat.dtype} {lat.shape}")
    if not np.isfinite(lat).all():
        raise ConfigError(f"{path}: latents hold NaN or infinite values")
    if w_dim is not None and lat.shape[-1] != w_dim:
        raise ConfigError(f"{path}: latents of {lat.shape[-1]} dimensions for a {w_dim}-dimensional direction")
    return lat


def editor_kept(specs: Sequence[str], w_dim: int, family: str):
    from ..boundary import same_family
    from ..fieldpath import kept

    out = []
    for spec in specs:
        e = resolve_editor(spec, "--keep")
        if e.w_dim != w_dim:
            raise ConfigError(f"--keep {spec}: {e.w_dim} dimensions, the direction has {w_dim}")
        if not same_family(e.family, family):
            raise ConfigError(f"--keep {spec}: family {e.family!r}, the direction's is {family!r}")
        out.append(kept(e, name=str(spec)))
    return out


# -- apply -----------------------------------------------------------------------------------------
@click.command("apply")
@click.argument("latents_path", metavar="LATENTS.npz")
@click.option("--direction", "direction", required=True, metavar="FILE",
              help="A field or boundary file (or a name in the directions folder).")
@click.option("--operator", required=True, metavar="NAME",
              help="A registered operator (`counterface info`): on/off: to the calibrated on/off level; neutral: "
                   "onto the decision boundary; shift/negate: a path of length --alpha (W units) up/down.")
@click.option("-o", "--output", "output", required=True, metavar="OUT.npz", help="Where to write the moved latents.")
@click.option("--alpha", type=click.FloatRange(min=-1000, max=1000), default=1.0, show_default=True,
              help="shift/negate: the path length in W units (-1000 to 1000).")
@click.option("--distance", type=click.FloatRange(min=-1e6, max=1e6), default=None,
              help="on/off: this target level (a field's logit, a boundary's signed distance) instead of the file's.")
@click.option("--keep", "keep", multiple=True, metavar="FILE",
              help="An attribute (boundary or field) whose level must not move: its gradient is projected out at "
                   "every step (repeatable).")
@click.option("--layers", default=None, metavar="ROWS",
              help="W+ rows to move (3-d latents; default the direction's own, else all).")
@click.option("--density", type=click.FloatRange(min=0, max=10), default=0.0, show_default=True,
              help="Weight of the density term that keeps paths near the training latents (fields only).")
def apply_command(latents_path, direction, operator, output, alpha, distance, keep, layers, density):
    """Apply an operator to latents with no images: each latent (each edited W+ row) moves along its
    own path of the field (a boundary: one straight line). Writes `latents` of the input's shape,
    with per-row `steps`, `path_length`, `logit_before`, `logit_after`, `reached`, and a JSON sidecar."""
    import io

    import torch

    from .. import config as config_mod
    from ..fieldpath import move_latents
    from ..imageio import file_sha256, write_bytes, write_json
    from ..paths import check_outputs

    src, out = Path(latents_path), Path(output)
    if out.suffix.lower() != ".npz":
        raise ConfigError(f"-o {output}: the moved latents are written as .npz")
    inputs = [src] + [Path(p) for p in (direction, *keep) if Path(p).is_file()]
    check_outputs([out, out.with_suffix(".json")], inputs)
    from .. import registry

    op = registry.create("operator", operator, **({} if distance is None else {"distance": distance}))
    if getattr(op, "returns_photo", False):
        raise ConfigError(f"--operator {operator}: returns the photo itself, it has no latent path")
    editor = resolve_editor(direction)
    f = as_field(editor, f"--direction {direction}")
    lat = read_latents(src, f.w_dim)
    from ..boundary import same_family

    kept = editor_kept(keep, f.w_dim, f.family)
    rows = None
    if layers not in (None, "all"):
        if lat.ndim != 3:
            raise ConfigError("--layers needs W+ latents (N, num_ws, w_dim)")
        rows = config_mod.parse_layers(layers, lat.shape[1])
    if lat.ndim == 3 and f.layers is not None and rows is None and max(f.layers) >= lat.shape[1]:
        raise ConfigError(f"the direction's layers {f.layers} are outside the latents' {lat.shape[1]} W+ rows")
    del same_family
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        moved, path = move_latents(f, torch.from_numpy(lat), op, alpha=alpha, keep=kept,
                                   rows=rows, density=density)
    finally:
        torch.set_num_threads(threads)
    shape = (lat.shape[0], -1) if lat.ndim == 3 else (lat.shape[0],)
    arrays = {"latents": moved.numpy().astype(lat.dtype), "steps": path.steps.numpy().reshape(shape),
              "path_length": path.length.numpy().reshape(shape), "logit_before": path.logit_before.numpy().reshape(shape),
              "logit_after": path.logit_after.numpy().reshape(shape), "reached": path.reached.numpy().reshape(shape)}
    if not np.isfinite(arrays["latents"]).all():
        raise ConfigError("the paths left the float range (non-finite latents): nothing written")
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes(out, buf.getvalue())
    reached = float(path.reached.double().mean())
    side = {
        "input": str(src), "input_sha256": file_sha256(src), "direction": str(direction),
        "direction_kind": "field" if not f.is_linear or "method" in f.meta and f.meta["method"] == "mlp" else "boundary",
        "operator": operator, "alpha": alpha if getattr(op, "uses_alpha", True) else None, "distance": distance,
        "keep": list(keep), "density": density, "step": f.step, "tolerance": f.tolerance, "shape": list(lat.shape),
        "reached": reached, "steps_mean": float(path.steps.double().mean()), "steps_max": int(path.steps.max()),
        "path_length_mean": float(path.length.mean()), "logit_before_mean": float(path.logit_before.mean()),
        "logit_after_mean": float(path.logit_after.mean()), "output": str(out),
    }
    write_json(out.with_suffix(".json"), side)
    click.echo(f"moved {lat.shape[0]} latents ({operator}): {reached:.1%} reached the target; mean path length "
               f"{side['path_length_mean']:.3f} in {side['steps_mean']:.1f} steps; wrote {out}")


# -- evaluate --------------------------------------------------------------------------------------
@click.command("evaluate")
@click.argument("latents_path", metavar="HELDOUT.npz")
@click.option("--editor", "editors", multiple=True, required=True, metavar="FILE",
              help="A boundary or field file to compare (repeatable).")
@click.option("--label", default="labels", show_default=True, help="The label array of the edited attribute.")
@click.option("--train", "train_path", default=None, metavar="TRAIN.npz",
              help="The editors' training latents (for the density floor); default: the held-out latents.")
@click.option("--keep", "keep", multiple=True, metavar="FILE", help="Attributes every editor keeps (repeatable).")
@click.option("--flip-target", type=click.FloatRange(min=0.05, max=1.0), default=0.5, show_default=True,
              help="The flip rate at which leakage is compared.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the evaluator's split and fit.")
@click.option("-o", "--output", "output", required=True, metavar="OUT.json",
              help="The JSON report (a PNG plot is written beside it).")
def evaluate_command(latents_path, editors, label, train_path, keep, flip_target, seed, output):
    """Compare editors (boundaries and fields) on held-out labelled latents: flip rate under a held-out
    evaluator against displacement, leakage on the other labelled attributes at equal flip rate, the
    share of on/off edits that leave the data, and the cycle error of off after on."""
    from .. import editors as ed
    from ..imageio import file_sha256, write_json
    from ..labelled import read_npz
    from ..paths import check_outputs

    src, out = Path(latents_path), Path(output)
    if out.suffix.lower() != ".json":
        raise ConfigError(f"-o {output}: the report is written as .json")
    png = out.with_suffix(".png")
    check_outputs([out, png], [src, *[Path(p) for p in (*editors, *keep, train_path) if p and Path(p).is_file()]])
    ex = read_npz(src, label)
    lat = ex.latents.mean(1) if ex.latents.ndim == 3 else ex.latents
    from .. import learn

    idx, y = learn.binarize(ex.values)
    x = lat[idx]
    others = {}
    with np.load(src, allow_pickle=False) as data:
        for name in data.files:
            if name in ("latents", label):
                continue
            try:
                v = np.asarray(data[name])
            except ValueError:
                continue
            if v.ndim == 1 and len(v) == len(ex.latents) and v.dtype.kind in "biuf" and len(np.unique(v)) == 2:
                others[name] = (v[idx] == v.max()).astype(np.int64)
    fields = {}
    for spec in editors:
        f = as_field(resolve_editor(spec, "--editor"), f"--editor {spec}")
        if f.w_dim != x.shape[1]:
            raise ConfigError(f"--editor {spec}: {f.w_dim} dimensions, the latents have {x.shape[1]}")
        fields[Path(spec).stem if Path(spec).stem not in fields else spec] = f
    kept = editor_kept(keep, x.shape[1], "")
    train = None
    if train_path:
        t = read_latents(Path(train_path), x.shape[1])
        train = t.mean(1) if t.ndim == 3 else t
    result = ed.evaluate(fields, x, y, others, train=train, flip_target=flip_target, seed=seed, keep=kept)
    result.update(input=str(src), input_sha256=file_sha256(src), label=label, keep=list(keep),
                  editor_files={k: str(v) for k, v in zip(fields, editors)}, plot=str(png))
    write_json(out, result)
    ed.plot(result, png)
    for name, e in result["editors"].items():
        a = e["at_equal_flip"]
        click.echo(f"{name}: flip {a['flip_rate']:.2f} at length {a['length']}; on/off true side "
                   f"{e['on_true_share']:.2f}/{e['off_true_share']:.2f}; off the data {e['off_data_share']:.2f}; "
                   f"cycle error {e['cycle_error']:.3g}")
    click.echo(f"wrote {out} and {png}")

"""`counterface directions`: learn, calibrate, list and show attribute boundaries.

Only the group is named ``*_cmd`` (the CLI adds those at the top level); its sub-commands are not.

The geometry (signed distance, conditioning) is stated in :mod:`counterface.boundary`; the fits in
:mod:`counterface.learn`; where labelled latents come from in :mod:`counterface.labelled`.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Callable

import click
import numpy as np

from ..boundary import same_family
from ..errors import ConfigError
from ._common import CounterfaceGroup, finite, resolve_config

#: component options of the directions commands (the parts of a pipeline they use)
_PARTS = ("aligner", "inverter", "generator")


def _pipeline_source_options(parts: tuple[str, ...]) -> Callable:
    """--preset, --config, --set and --<kind> NAME for the pipeline parts a command uses."""

    def deco(func: Callable) -> Callable:
        opts = [
            click.option("--preset", default=None,
                         help="Named composition whose generator (and aligner, inverter) to use; default smilegan-pti."),
            click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                         help="TOML file with the same keys as --set (see docs/cli.md)."),
            click.option("--set", "sets", multiple=True, metavar="KIND.PARAM=VALUE",
                         help="Set a component parameter (repeatable)."),
        ]
        for kind in parts:
            opts.append(click.option(f"--{kind}", f"comp_{kind}", default=None, metavar="NAME",
                                     help=f"Choose the {kind} by name (see `counterface plugins`)."))
        for opt in reversed(opts):
            func = opt(func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            kwargs["components"] = {k: kwargs.pop(f"comp_{k}") for k in parts}
            return func(*args, **kwargs)

        return wrapper

    return deco


def _pipeline(preset, config_file, components, sets):
    from ..pipeline import Pipeline

    return Pipeline(resolve_config(preset, config_file, components, sets))


def _chosen(preset, config_file, components, sets) -> bool:
    return bool(preset or config_file or sets or any(components.values()))


def resolve_boundary(spec: str):
    """The :class:`~counterface.boundary.Boundary` a NAME_OR_FILE names: a boundary or vector file, a
    boundary in the directions folder, or a registered direction (its ``boundary``)."""
    from .. import registry
    from ..boundary import find_boundary_file, load_boundary

    table = registry.entries("direction")
    if spec in table and spec != "boundary":
        d = registry.create("direction", spec)
        b = getattr(d, "boundary", None)
        if b is None:
            raise ConfigError(f"direction {spec!r} exposes no boundary (a third-party direction without one)")
        return b
    path = find_boundary_file(spec)
    if path is not None:
        return load_boundary(path)
    registry.entry("direction", spec)  # raises: unknown, listing the registered names
    raise ConfigError(f"unknown direction {spec!r}")  # pragma: no cover


def _versions() -> dict[str, Any]:
    from ..provenance import package_version

    return {p: package_version(p) for p in ("counterface", "torch", "numpy", "scikit-learn", "safetensors")}


def _check_output(path: str) -> Path:
    p = Path(path)
    if p.suffix.lower() != ".safetensors":
        raise ConfigError(f"-o {path}: a boundary file is written as .safetensors (so that --direction finds it)")
    from ._common import check_output_dir

    check_output_dir(p.absolute().parent)
    return p


def _conditioning(specs: tuple[str, ...], w_dim: int, family: str | None, rows: list[int] | None):
    """(names, unit normals) of the --orthogonal-to boundaries, checked against the latents."""
    normals, names = [], []
    for spec in specs:
        o = resolve_boundary(spec)
        if o.w_dim != w_dim:
            raise ConfigError(f"--orthogonal-to {spec}: a {o.w_dim}-dimensional boundary (family "
                              f"{o.family or 'unknown'!r}) for {w_dim}-dimensional latents")
        if not same_family(o.family, family):
            raise ConfigError(f"--orthogonal-to {spec}: a boundary of family {o.family!r}, the latents are {family!r}")
        if o.shared:
            n = o.normal[0].double().numpy()
        else:
            idx = list(range(o.rows)) if rows is None else rows
            n = o.normal[idx].double().mean(0).numpy()
        normals.append(n / np.linalg.norm(n))
        names.append(spec if not Path(spec).is_file() else f"{o.attribute} ({Path(spec).name})")
    return names, normals


def _write(boundary, out: Path) -> None:
    from ..boundary import save_boundary
    from ..imageio import write_json

    save_boundary(boundary, out)
    write_json(out.with_suffix(".json"), boundary.describe())


def _summary(b, out: Path) -> None:
    acc = b.meta.get("accuracy")
    sd = b.meta.get("accuracy_sd")
    folds = b.meta.get("folds")
    acc_text = "not cross-validated" if acc is None else f"{folds}-fold accuracy {acc:.3f} +- {sd or 0:.3f}"
    click.echo(f"{b.attribute}: {b.meta.get('n_positive')} on, {b.meta.get('n_negative')} off; {acc_text}")
    click.echo(f"signed distance d = n . w + b: intercept {float(b.intercept[0]):+.4f}, "
               f"on_distance {b.on_distance:+.3f}, off_distance {b.off_distance:+.3f}")
    if b.meta.get("conditioned_on"):
        click.echo(f"conditioned on {', '.join(b.meta['conditioned_on'])} "
                   f"(largest |cos| afterwards {b.meta.get('max_abs_cos_conditioned', 0):.1e})")
    click.echo(f"wrote {out} (family {b.family or 'unknown'}, w_dim {b.w_dim}, layers "
               f"{'all' if b.layers is None else _layers_text(b.layers)})")


def _widths(text: str) -> list[int]:
    try:
        widths = [int(v) for v in str(text).replace(" ", "").split(",") if v]
    except ValueError:
        raise ConfigError(f"--hidden {text!r}: widths are positive integers, comma-separated (e.g. 64 or 64,32)") from None
    if any(not 0 < w <= 4096 for w in widths) or len(widths) > 4:
        raise ConfigError(f"--hidden {text!r}: at most 4 layers of 1 to 4096 units")
    return widths


def _check_family(fam: str | None, w_dim: int, num_ws: int | None) -> None:
    """ConfigError when the latents' family string contradicts their shape."""
    from ..boundary import family_shape

    f_ws, f_dim = family_shape(fam)
    if f_dim is not None and f_dim != w_dim:
        raise ConfigError(f"the latents' family {fam!r} has w_dim {f_dim}, but the latents have {w_dim} dimensions")
    if f_ws is not None and num_ws is not None and f_ws != num_ws:
        raise ConfigError(f"the latents' family {fam!r} has {f_ws} W+ rows, but the latents have {num_ws}")


def _layers_text(rows: list[int]) -> str:
    return ",".join(map(str, rows))


@click.group("directions", cls=CounterfaceGroup)
def directions_cmd() -> None:
    """Attribute boundaries: learn one from labelled photos or latents, calibrate one with a scorer,
    list and show them (see docs/directions.md)."""


from ._fields import apply_command, evaluate_command  # noqa: E402

directions_cmd.add_command(apply_command)
directions_cmd.add_command(evaluate_command)


# -- learn -----------------------------------------------------------------------------------------
@directions_cmd.command("learn")
@click.argument("input_path", metavar="INPUT")
@click.option("--label", default=None, metavar="COLUMN",
              help="Label column of the manifest (0/1, true/false, or a score with --threshold); for an .npz, the "
                   "label array (default 'labels').")
@click.option("-o", "--output", "output", required=True, metavar="FILE.safetensors", help="Boundary file to write.")
@click.option("--threshold", type=finite(), default=None, metavar="T", help="Numeric labels: on = value > T.")
@click.option("--keep-extremes", type=finite(min=0, max=0.5, min_open=True), default=None, metavar="FRACTION",
              help="Continuous scores: keep the FRACTION highest (on) and lowest (off), drop the middle (InterFaceGAN).")
@click.option("--layers", default=None, metavar="ROWS",
              help="W+ rows that feed the fit (their mean) and that edits move: 4-6, 0,2,5-7 or all (default all).")
@click.option("--orthogonal-to", "orthogonal_to", multiple=True, metavar="NAME_OR_FILE",
              help="Condition on another boundary: the learned normal is made orthogonal to it (repeatable).")
@click.option("--method", type=click.Choice(["svm", "logistic", "mlp"]), default="svm", show_default=True,
              help="Linear SVM (InterFaceGAN), logistic regression, or mlp: an attribute field (a small classifier "
                   "network whose gradient moves each face along its own path; see docs/directions.md).")
@click.option("--hidden", default="64", show_default=True, metavar="WIDTHS",
              help="--method mlp: hidden layer widths, comma-separated (empty: a linear field).")
@click.option("--folds", type=click.IntRange(min=0), default=5, show_default=True,
              help="k of the stratified k-fold cross-validated accuracy (0: none).")
@click.option("--min-per-class", type=click.IntRange(min=1), default=10, show_default=True,
              help="Refuse to fit with fewer examples than this of either class.")
@click.option("--attribute", default=None, help="Attribute name recorded in the file (default: the label column).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the folds and the solver.")
@click.option("--cache", "cache_path", default=None, metavar="FILE.npz",
              help="Latent cache of the photo route (default: counterface-latents.npz next to the output).")
@_pipeline_source_options(_PARTS)
def learn_command(input_path, label, output, threshold, keep_extremes, layers, orthogonal_to, method, hidden, folds,
                  min_per_class, attribute, seed, cache_path, preset, config_file, sets, components):
    """Learn a boundary from labelled photos (a folder, CSV or JSONL manifest, as `batch` reads) or
    from an .npz of latents and labels, and write it as FILE.safetensors."""
    from .. import config as config_mod
    from .. import labelled, learn
    from ..boundary import Boundary, project_out

    from ..paths import check_outputs

    out = _check_output(output)
    src = Path(input_path)
    widths = _widths(hidden) if method == "mlp" else None
    check_outputs([out, out.with_suffix(".json")], [src, *[p for p in orthogonal_to if Path(p).is_file()]])
    if src.suffix.lower() == ".npz":
        ex = labelled.read_npz(src, label)
        lat = ex.latents
        fam = ex.family
        gen_shape = None
        if _chosen(preset, config_file, components, sets):
            pipe = _pipeline(preset, config_file, components, sets)
            gfam, num_ws, w_dim = labelled.generator_shape(pipe.generator)
            gen_shape = (num_ws, w_dim)
            if lat.shape[-1] != w_dim:
                raise ConfigError(f"{src}: latents of {lat.shape[-1]} dimensions, but the generator of "
                                  f"{pipe.config.get('preset')!r} ({gfam}) has w_dim {w_dim}")
            if lat.ndim == 3 and lat.shape[1] != num_ws:
                raise ConfigError(f"{src}: latents with {lat.shape[1]} W+ rows, but the generator ({gfam}) has {num_ws}")
            if not same_family(fam, gfam):
                raise ConfigError(f"{src}: latents of family {fam!r}, but the generator is {gfam!r}")
            fam = gfam or fam
    else:
        if not label:
            raise ConfigError("--label COLUMN is required: the manifest column holding the labels")
        _, values = labelled.manifest_labels(src, label)  # refuse bad labels before inverting anything
        pre = np.array([np.nan if v is None else v for v in values], np.float64)
        learn.check_classes(learn.binarize(pre, threshold, keep_extremes)[1], min_per_class)
        pipe = _pipeline(preset, config_file, components, sets)
        cache = Path(cache_path) if cache_path else out.absolute().parent / "counterface-latents.npz"
        check_outputs([cache], [src, out])
        ex = labelled.read_photos(src, label, pipe, cache)
        for key, why in ex.skipped:
            click.echo(f"warning: skipped photo {key}: {why}", err=True)
        click.echo(f"{len(ex.keys)} photos: {ex.inverted} inverted, {ex.cached} from the cache ({cache}); "
                   f"{len(ex.skipped)} skipped", err=True)
        lat = ex.latents
        fam = ex.family
        _, num_ws, w_dim = labelled.generator_shape(pipe.generator)
        gen_shape = (num_ws, w_dim)
    num_ws = lat.shape[1] if lat.ndim == 3 else (gen_shape[0] if gen_shape else None)
    rows = None if layers in (None, "all") else config_mod.parse_layers(layers, num_ws)
    if rows is not None and num_ws is not None and rows == list(range(num_ws)):
        rows = None  # every row: recorded as "all"
    idx, y = learn.binarize(ex.values, threshold, keep_extremes)
    learn.check_classes(y, min_per_class)
    x = labelled.fit_rows(lat[idx], rows)
    _check_family(fam, x.shape[1], lat.shape[1] if lat.ndim == 3 else None)
    names, others = _conditioning(tuple(orthogonal_to), x.shape[1], fam, rows)
    if method == "mlp":
        from ._fields import learn_field

        learn_field(x, y, ex, widths, folds=folds, seed=seed, others=others, names=names, attribute=attribute,
                    family=fam, rows=rows, out=out, versions=_versions(), threshold=threshold,
                    keep_extremes=keep_extremes)
        return
    fit = learn.fit_hyperplane(x, y, method=method, folds=folds, seed=seed, others=others)
    normal = fit.normal
    max_cos = None
    if others:
        import torch

        normal = project_out(torch.from_numpy(normal), [torch.from_numpy(o) for o in others]).double().numpy()
        max_cos = float(max(abs(float(normal @ o)) for o in others))
    d = x @ normal + fit.intercept
    on_d, off_d = learn.on_off_distances(d, y)
    pos, neg = int((y == 1).sum()), int((y == 0).sum())
    meta = {
        "method": method, "n_positive": pos, "n_negative": neg, "accuracy": fit.accuracy,
        "accuracy_sd": fit.accuracy_sd, "folds": fit.folds if fit.accuracy is not None else None,
        "train_accuracy": fit.train_accuracy, "conditioned_on": names,
        "label": ex.source.get("label"), "threshold": threshold, "keep_extremes": keep_extremes, "seed": seed,
        "provenance": {"input": ex.source, "skipped": len(ex.skipped), "versions": _versions(),
                       "fit": "shared normal on the mean of the chosen W+ rows"},
    }
    if max_cos is not None:
        meta["max_abs_cos_conditioned"] = max_cos
    b = Boundary(normal=normal, intercept=np.array([fit.intercept]), attribute=attribute or ex.source.get("label") or "",
                 family=fam or "", layers=rows, on_distance=on_d, off_distance=off_d, meta=meta)
    from ._fields import check_learned

    check_learned(fit.accuracy, fit.train_accuracy, on_d, off_d, names)
    _write(b, out)
    _summary(b, out)


# -- calibrate -------------------------------------------------------------------------------------
@directions_cmd.command("calibrate")
@click.argument("spec", metavar="NAME_OR_FILE")
@click.option("--samples", type=click.IntRange(min=2, max=1_000_000), required=True, metavar="N",
              help="Faces to sample, synthesize and score (2 to 1,000,000).")
@click.option("--scorer", default=None, metavar="NAME",
              help="Attribute scorer (see `counterface plugins`); default: the scorer named like the attribute.")
@click.option("-o", "--output", "output", default=None, metavar="FILE.safetensors",
              help="Where to write (default: NAME.safetensors in the directions folder, where --direction NAME "
                   "and the registered direction of that name find it).")
@click.option("--threshold", type=finite(), default=None, metavar="T",
              help="On = score > T (default: the median score of the samples).")
@click.option("--keep-extremes", type=finite(min=0, max=0.5, min_open=True), default=None, metavar="FRACTION",
              help="Keep only the FRACTION highest- and lowest-scoring samples.")
@click.option("--refit", is_flag=True, help="Fit the normal too (default: keep the given normal, fit its intercept).")
@click.option("--method", type=click.Choice(["svm", "logistic"]), default="svm", show_default=True)
@click.option("--folds", type=click.IntRange(min=0), default=5, show_default=True)
@click.option("--min-per-class", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sampled z (and the folds).")
@_pipeline_source_options(("generator",))
def calibrate_command(spec, samples, scorer, output, threshold, keep_extremes, refit, method, folds, min_per_class,
                      batch_size, seed, preset, config_file, sets, components):
    """Sample z, map it to w, synthesize, score every image with an attribute scorer, then fit the
    boundary's intercept and on/off distances (or, with --refit or for an attribute with no
    direction yet, the whole boundary) on (w, score) (InterFaceGAN's route)."""
    import torch

    from .. import learn, registry
    from ..boundary import Boundary, directions_dir, find_boundary_file
    from ..labelled import generator_shape
    from ..convert import to_image

    pipe = _pipeline(preset, config_file, components, sets)
    configured = (pipe.config.get("direction") or {}).get("name")
    if spec == configured and spec != "boundary":  # the preset's own direction, with its parameters
        given = pipe.component("direction").boundary
    else:
        try:
            given = resolve_boundary(spec)
        except ConfigError:
            if find_boundary_file(spec) is not None or spec in registry.entries("direction"):
                raise
            given = None  # an attribute without a direction yet: the normal is fitted
    g = pipe.generator
    gfam, num_ws, w_dim = generator_shape(g)
    if given is not None:
        if given.w_dim != w_dim:
            raise ConfigError(f"{spec}: a {given.w_dim}-dimensional boundary (family {given.family or 'unknown'!r}), "
                              f"but the generator ({gfam}) has w_dim {w_dim}")
        if not same_family(given.family, gfam):
            raise ConfigError(f"{spec}: a boundary for {given.family!r}, but the generator is {gfam!r}")
    attribute = given.attribute if given is not None else spec
    scorer_name = scorer or attribute
    if scorer is None and scorer_name not in registry.entries("scorer"):
        have = ", ".join(registry.available("scorer")) or "none registered"
        raise ConfigError(f"no scorer for attribute {attribute!r}; choose one with --scorer NAME (available: {have})")
    sc = registry.create("scorer", scorer_name)
    if out_given := output:
        out = _check_output(out_given)
    else:
        stem = Path(spec).stem if find_boundary_file(spec) is not None else spec
        out = directions_dir() / f"{stem}.safetensors"
        out.parent.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn(samples, w_dim, generator=gen)
    ws, scores = [], []
    with click.progressbar(length=samples, label="sampling and scoring", file=click.get_text_stream("stderr")) as bar:
        for i in range(0, samples, batch_size):
            with torch.inference_mode():
                w = g.mapping(z[i:i + batch_size]).float()
                imgs = g.synthesize(w[:, None, :].expand(-1, num_ws, -1).contiguous())
            ws.append(w.cpu().double().numpy())
            scores.append(np.asarray(sc.score([to_image(im) for im in imgs]), np.float64).reshape(-1))
            bar.update(len(w))
    w_all = np.concatenate(ws)
    s_all = np.concatenate(scores)
    if len(s_all) != samples:
        raise ConfigError(f"scorer {scorer_name!r} returned {len(s_all)} scores for {samples} images")
    finite = np.isfinite(s_all)
    if not finite.any():
        raise ConfigError(f"scorer {scorer_name!r} could not score any of the {samples} images")
    t = threshold if (threshold is not None or keep_extremes is not None) else float(np.median(s_all[finite]))
    idx, y = learn.binarize(s_all, t, keep_extremes)
    learn.check_classes(y, min_per_class, what="scored samples")
    x = w_all[idx]
    if given is None or refit:
        fit = learn.fit_hyperplane(x, y, method=method, folds=folds, seed=seed)
        normal, intercept, acc, sd = fit.normal, fit.intercept, fit.accuracy, fit.accuracy_sd
        rows_normal = torch.from_numpy(normal)
        what = "normal and intercept"
    else:
        rows_normal = given.normal
        n = given.normal[0].double().numpy() if given.shared else given.normal.double().mean(0).numpy()
        n = n / np.linalg.norm(n)
        intercept, acc, sd = learn.fit_intercept(x @ n, y, method=method, folds=folds, seed=seed)
        normal = n
        what = "intercept (normal kept)"
    d = x @ normal + intercept
    on_d, off_d = learn.on_off_distances(d, y)
    meta = dict(given.meta) if given is not None and not refit else {}
    meta.update({
        "method": f"calibrate-{method}", "fitted": what, "scorer": scorer_name, "samples": samples,
        "n_positive": int((y == 1).sum()), "n_negative": int((y == 0).sum()), "accuracy": acc,
        "accuracy_sd": sd, "folds": folds if acc is not None else None, "threshold": t,
        "keep_extremes": keep_extremes, "seed": seed,
        "provenance": {"generator": pipe.generator_record(), "versions": _versions(),
                       "from": None if given is None else spec},
    })
    meta.pop("file_sha256", None)
    b = Boundary(normal=rows_normal, intercept=torch.tensor([intercept]), attribute=attribute,
                 family=gfam or (given.family if given is not None else ""),
                 layers=None if given is None else given.layers, on_distance=on_d, off_distance=off_d, meta=meta)
    if not on_d > off_d:
        raise ConfigError(f"the scorer's attribute runs against this normal (on_distance {on_d:.3g} <= off_distance "
                          f"{off_d:.3g}): nothing written; calibrate with --refit to fit the normal too")
    if acc is not None and acc < 0.5:
        click.echo(f"warning: accuracy {acc:.2f} is below chance: the scorer's attribute runs against this normal",
                   err=True)
    _write(b, out)
    click.echo(f"calibrated the {what} of {attribute!r} with scorer {scorer_name!r} on {samples} samples")
    _summary(b, out)


# -- list, show ------------------------------------------------------------------------------------
def _registered_rows() -> list[dict[str, Any]]:
    from .. import registry
    from ..boundary import cached_boundaries, read_header

    cached = cached_boundaries()
    rows = []
    for name, e in sorted(registry.entries("direction").items()):
        if name == "boundary":
            continue  # the loader of boundary files, not a direction
        row: dict[str, Any] = {"name": name, "source": "registered", "plugin": e.plugin, "description": e.description}
        try:
            d = registry.create("direction", name)
            row.update(attribute=getattr(d, "attribute", ""), family=getattr(d, "family", ""))
        except Exception as exc:  # noqa: BLE001 - a listing never fails on one plugin
            row.update(attribute=None, family=None, error=" ".join(str(exc).split()))
        row.update(has_intercept=False, accuracy=None)
        if name in cached:  # a calibration under this name gives the registered direction its intercept
            tensors, meta = read_header(cached[name])
            if "intercept" in tensors and meta.get("attribute") == row.get("attribute"):
                row.update(has_intercept=True, accuracy=meta.get("accuracy"), calibration=str(cached[name]))
        rows.append(row)
    return rows


def _cached_rows() -> list[dict[str, Any]]:
    from ..boundary import cached_boundaries
    from ..errors import CounterfaceError
    from ._fields import resolve_editor

    rows = []
    for name, path in cached_boundaries().items():
        try:  # the same full validation as show and --direction
            e = resolve_editor(str(path))
        except CounterfaceError as exc:
            rows.append({"name": name, "source": "cached", "path": str(path), "error": str(exc)})
            continue
        is_field = not hasattr(e, "normal")
        rows.append({"name": name, "source": "cached", "path": str(path), "attribute": e.attribute,
                     "family": e.family, "has_intercept": True if is_field else e.has_intercept,
                     "accuracy": e.meta.get("accuracy"), "w_dim": e.w_dim, "kind": "field" if is_field else "boundary"})
    return rows


@directions_cmd.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_command(as_json):
    """Registered directions and the boundaries in the directions folder, with attribute, family,
    whether an intercept is known, and accuracy."""
    from ..boundary import directions_dir

    rows = _registered_rows() + _cached_rows()
    if as_json:
        for r in rows:
            click.echo(json.dumps(r, sort_keys=True))
        return
    click.echo(f"{'name':<16} {'source':<10} {'attribute':<12} {'family':<34} {'intercept':<9} accuracy")
    for r in rows:
        hi = r.get("has_intercept")
        hi_text = ("calibrated" if r.get("calibration") else "yes") if hi else "unknown"
        acc = r.get("accuracy")
        if r.get("error"):
            click.echo(f"{r['name']:<16} {r['source']:<10} invalid: {r['error']}")
            continue
        click.echo(f"{r['name']:<16} {r['source']:<10} {str(r.get('attribute') or '-'):<12} "
                   f"{str(r.get('family') or 'unknown'):<34} {hi_text:<9} {'-' if acc is None else f'{acc:.3f}'}")
    click.echo(f"(directions folder: {directions_dir()})", err=True)


@directions_cmd.command("show")
@click.argument("spec", metavar="FILE")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def show_command(spec, as_json):
    """What a boundary file (or a cached or registered direction) holds: attribute, family, w_dim,
    layers, intercept, accuracy, on/off distances, conditioning and provenance."""
    from ..imageio import dumps_json
    from ._fields import resolve_editor

    b = resolve_editor(spec, "show")
    info = b.describe()
    if as_json:
        click.echo(dumps_json(info, sort_keys=True))
        return
    if info.get("kind") == "field":
        for k in ("attribute", "family", "w_dim", "layers", "architecture", "accuracy", "calibration",
                  "on_distance", "off_distance", "step", "density", "method", "n_positive", "n_negative",
                  "conditioned_on"):
            if k in info:
                click.echo(f"{k:<14} {info[k]}")
        return
    for k in ("attribute", "family", "w_dim", "rows", "layers", "has_intercept", "intercept", "accuracy",
              "on_distance", "off_distance", "method", "n_positive", "n_negative", "conditioned_on"):
        if k in info:
            click.echo(f"{k:<14} {info[k]}")
    if not b.has_intercept:
        click.echo("note: no intercept: the signed distance is unknown (calibrate it with "
                   "`counterface directions calibrate`)")

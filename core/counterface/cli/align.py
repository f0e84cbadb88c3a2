"""`counterface align`: step 1 alone, the first thing to run on a new set of photos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

from ..errors import CounterfaceError, UnknownComponentError
from ._common import check_output_dir, finite, is_photo_error, photo_error, pipeline_options, resolve_config


def _sole_aligner() -> str:
    """The registered aligner when there is exactly one; else ConfigError asking for --aligner."""
    from ..errors import ConfigError
    from ..registry import available

    names = available("aligner")
    if len(names) != 1:
        raise ConfigError(f"no preset is installed: choose the aligner with --aligner NAME "
                          f"(registered: {', '.join(names) or 'none'})")
    return names[0]


def aligner_config(preset, config_file, components, sets) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``(aligner name, aligner params, full config)`` from the usual pipeline options.

    The preset (``smilegan-pti`` unless ``--preset``/the TOML file says otherwise) decides the aligner
    unless ``--aligner`` does. When no preset is registered at all (a bare install without the
    presets plugin), the aligner comes from ``--aligner``/``--set aligner.*`` alone, or is the only
    one registered.
    """
    from .. import config as config_mod

    try:
        cfg = resolve_config(preset, config_file, components, sets)
    except UnknownComponentError:
        if preset:
            raise
        from ..registry import presets

        if presets():
            raise
        cfg = {"aligner": {"name": components.get("aligner") or _sole_aligner()}, "edit": {}}
        file_cfg = config_mod.load_toml(config_file) if config_file else {}
        if isinstance(file_cfg.get("aligner"), dict):
            config_mod._merge_section(cfg, "aligner", file_cfg["aligner"], str(config_file))
        if components.get("aligner"):
            config_mod._merge_section(cfg, "aligner", {"name": components["aligner"]}, "--aligner")
        for item in sets:
            section, param, value = config_mod.parse_set(item)
            if section == "aligner":
                config_mod._merge_section(cfg, section, {param: value}, "--set")
    name, params = config_mod.component_params(cfg, "aligner")
    return name, params, cfg


def draw_landmarks(image: np.ndarray, faces) -> np.ndarray:
    """A copy of ``image`` with each face's 68 landmarks, FFHQ crop square and index drawn."""
    import cv2

    from .. import geometry

    out = np.ascontiguousarray(image.copy())
    scale = max(image.shape[:2]) / 1000.0
    for f in faces:
        r = max(1, int(round(f.face_width / 120)))
        quad = geometry.apply(geometry.invert(f.matrix), np.array(
            [[-0.5, -0.5], [-0.5, f.size - 0.5], [f.size - 0.5, f.size - 0.5], [f.size - 0.5, -0.5]]))
        cv2.polylines(out, [np.rint(quad).astype(np.int32)], True, (255, 200, 0), max(1, int(round(2 * scale))),
                      cv2.LINE_AA)
        for i, (x, y) in enumerate(f.landmarks):
            colour = (255, 40, 40) if 48 <= i < 68 else (40, 255, 40) if 36 <= i < 48 else (40, 120, 255)
            cv2.circle(out, (int(round(x)), int(round(y))), r, colour, -1, cv2.LINE_AA)
        h, w = out.shape[:2]
        tx = int(np.clip(quad[:, 0].min() + 4, 0, w - 30 * max(scale, 0.5)))
        ty = int(np.clip(quad[:, 1].min() + 30 * max(scale, 0.5), 30 * max(scale, 0.5), h - 4))
        cv2.putText(out, str(f.index), (tx, ty),
                    cv2.FONT_HERSHEY_SIMPLEX, max(scale, 0.5), (255, 200, 0), max(1, int(round(2 * scale))),
                    cv2.LINE_AA)
    return out


def _unique_stem(path: Path, seen: dict[str, int]) -> str:
    stem = path.stem
    n = seen.get(stem, 0)
    seen[stem] = n + 1
    return stem if n == 0 else f"{stem}-{n}"


@click.command("align")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder.")
@pipeline_options
@click.option("--face", default="all", show_default=True,
              help="Which faces: largest, all, or an index N (0-based, largest first).")
@click.option("--min-face", type=finite(min=0), default=0, show_default=True, metavar="PX",
              help="Skip faces narrower than PX photo pixels.")
@click.option("--size", type=click.IntRange(min=8), default=None, metavar="N",
              help="Crop side in pixels (default: the aligner's, 1024 for FFHQ; e4e reads 256).")
def align_cmd(images, out_dir, preset, config_file, sets, components, face, min_face, size) -> None:
    """Find and align the faces of IMAGE... (step 1) and show what was found.

    For each photo writes <stem>_face<i>.png (the FFHQ crops), <stem>_landmarks.png (the photo with the
    68 landmarks and the crop squares drawn) and <stem>_align.json (matrices photo -> crop, landmarks,
    boxes, settings). The aligner is the preset's (smilegan-pti: fan) unless --aligner says otherwise;
    `--aligner dlib` works offline. Exit 3 if a photo has no face; with several photos, failures are
    reported one line each and the others go on (the exit status is that of the first failure).
    """
    from .. import imageio
    from ..matching import select_faces
    from ..provenance import component_record, environment
    from ..registry import create

    name, params, cfg = aligner_config(preset, config_file, components, sets)
    aligner = create("aligner", name, **params)
    check_output_dir(out_dir)
    seen: dict[str, int] = {}
    first_error: CounterfaceError | None = None
    for path in images:
        try:
            image = imageio.read_image(path)
            faces = select_faces(aligner.align(image, size=size), face, min_face)
            stem = _unique_stem(path, seen)
            records = []
            for f in faces:
                crop_name = f"{stem}_face{f.index}.png"
                imageio.write_image(crop_name, f.crop, out_dir=out_dir, inputs=images)
                records.append({**f.to_json(), "crop": crop_name, "crop_landmarks":
                                np.asarray(f.crop_landmarks).round(3).tolist()})
            drawn = f"{stem}_landmarks.png"
            imageio.write_image(drawn, draw_landmarks(image, faces), out_dir=out_dir, inputs=images)
            imageio.write_json(f"{stem}_align.json", {
                "counterface_sidecar": 1,
                "input": {"path": str(path), "sha256": imageio.file_sha256(path), "width": int(image.shape[1]),
                          "height": int(image.shape[0])},
                "convention": "points (x, y) in pixels, pixel centres at integers; matrix maps photo -> crop",
                "face": face,
                "min_face": min_face,
                "aligner": component_record("aligner", aligner),
                "preset": cfg.get("preset"),
                "faces": records,
                "landmarks_image": drawn,
                "environment": environment(),
            }, out_dir=out_dir, inputs=images)
            click.echo(f"{path}: {len(faces)} face(s) -> {out_dir / stem}_face*.png")
        except CounterfaceError as exc:
            if not is_photo_error(exc):
                raise  # weights or configuration: every other photo would fail the same way
            photo_error(path, exc)
            first_error = first_error or exc
    if first_error is not None:
        raise click.exceptions.Exit(first_error.exit_code)


__all__ = ["align_cmd", "aligner_config", "draw_landmarks"]

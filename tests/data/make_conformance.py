"""Build ``conformance/`` from a full conformance folder (the one the goldens were first delivered in).

    python3 tests/data/make_conformance.py SOURCE_FOLDER

Copies the three manifests and ``constants.npz`` byte for byte and writes a lean ``goldens.npz``:
small arrays as they are; ``*_pool256`` quantised to steps of 2^-13 (int16, error <= 6.1e-5, against
the tests' tolerance of 2e-4); the float16 1024 images cut to two 128 x 128 full-resolution windows
(``*_windows``, tolerance 3e-3 as before); the inputs left out (``tests/conformance.py`` regenerates
them and checks them against the sha256 recorded in ``goldens_meta.json``).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests import conformance as cf  # noqa: E402

OUT = Path(__file__).resolve().parent / "conformance"
COPIED = ["stylegan2_ffhq_1024.json", "e4e_ffhq_encode.json", "arcface_ir_se50.json", "constants.npz"]
IMAGES_1024 = ["sg_img_wplus", "sg_img_z", "e4e_img"]


def main(source: Path) -> None:
    OUT.mkdir(exist_ok=True)
    for name in COPIED:
        shutil.copyfile(source / name, OUT / name)
    ref_meta = json.loads((source / "goldens_meta.json").read_text())
    regenerated = cf.inputs()
    arrays, errors = {}, {}
    with np.load(source / "goldens.npz") as z:
        for k in z.files:
            a = z[k]
            if k in regenerated:
                assert np.array_equal(regenerated[k], a), f"regenerated input {k} differs"
            elif k in IMAGES_1024:
                arrays[k + "_windows"] = cf.windows(a)
            elif k.endswith("_pool256"):
                q = np.round(a.astype(np.float64) * (1 << cf.POOL_STEP_BITS))
                assert np.abs(q).max() < 2 ** 15
                arrays[f"{k}_q{cf.POOL_STEP_BITS}"] = q.astype(np.int16)
                errors[k] = float(np.abs(q / (1 << cf.POOL_STEP_BITS) - a).max())
            else:
                arrays[k] = a
    np.savez_compressed(OUT / "goldens.npz", **arrays)
    meta = {
        "format": "counterface-conformance-goldens/1",
        "derived_from": "conformance-goldens/1 (goldens.npz, 38 MB): see README.md",
        "inputs_sha256": {k: cf.sha256(v) for k, v in regenerated.items()},
        "pool256_quantisation": {"step": 2.0 ** -cf.POOL_STEP_BITS, "max_abs_error": errors},
        "windows_of_1024_images": {"top_left": cf.WINDOWS, "size": cf.WINDOW},
        "reference": {k: ref_meta[k] for k in ("produced_with", "det_fingerprints", "observed_reference_variation",
                                                "fp16_storage_max_abs_error") if k in ref_meta},
    }
    (OUT / "goldens_meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print({p.name: p.stat().st_size for p in sorted(OUT.iterdir())})


if __name__ == "__main__":
    main(Path(sys.argv[1]))

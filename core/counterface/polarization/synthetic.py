"""A planted synthetic study for ``counterface polarization``: offline, seeded, about a second to make.

Each article has a small random image (a smooth colour gradient plus noise); its pair is Z1 = the
image with a visual mark (a bright square in the top-left corner) and Z0 = the image without it. The
published image carries the mark with probability 1/2. For the *planted* politician the outlet
depends on the mark: a marked image goes to the second outlet with probability
sigmoid(effect / 2), an unmarked one with sigmoid(-effect / 2). For every other politician the
outlet is a fair coin, whatever the image. So, with outlets (y1, y2) in sorted order::

    rho_T(planted, y1, y2) = -effect        rho_T(other, y1, y2) = 0

Usage: ``python3 -m counterface.polarization.synthetic OUT [--articles 300] [--effect 3] [--seed 0]``
writes OUT/articles.csv, OUT/pairs.csv and the images under OUT/images/.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import Sequence

import numpy as np

from ..imageio import write_bytes, write_image


def _image(rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    c0, c1, c2 = rng.uniform(40, 200, 3), rng.uniform(-60, 60, 3), rng.uniform(-60, 60, 3)
    img = c0 + c1 * xx[..., None] + c2 * yy[..., None] + rng.normal(0, 12, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def mark(image: np.ndarray) -> np.ndarray:
    """The visual mark T: a bright yellow square over the top-left quarter-side corner."""
    out = image.copy()
    s = max(image.shape[0] // 4, 1)
    out[:s, :s] = (255, 230, 0)
    return out


def make_study(out_dir: str | Path, *, articles: int = 300, politicians: Sequence[str] = ("planted", "null"),
               outlets: Sequence[str] = ("left", "right"), effect: float = 3.0, size: int = 32,
               seed: int = 0) -> dict:
    """Write the study into ``out_dir``; returns the paths and the true rho per politician.

    Articles are split evenly between ``politicians``; the first one carries the effect.
    """
    if len(outlets) != 2:
        raise ValueError("the synthetic study has two outlets")
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    rows, pairs = [], []
    for i in range(articles):
        pol = politicians[i % len(politicians)]
        base = _image(rng, size)
        z1, z0 = mark(base), base
        marked = bool(rng.random() < 0.5)
        logit = (effect / 2 if marked else -effect / 2) if pol == politicians[0] else 0.0
        outlet = outlets[1] if rng.random() < 1 / (1 + np.exp(-logit)) else outlets[0]
        key = f"a{i:04d}"
        write_image(out / "images" / f"{key}.png", z1 if marked else z0)
        write_image(out / "images" / f"{key}_z1.png", z1)
        write_image(out / "images" / f"{key}_z0.png", z0)
        rows.append({"id": key, "path": f"images/{key}.png", "politician": pol, "outlet": outlet,
                     "section": ["news", "opinion"][int(rng.random() < 0.3)]})
        pairs.append({"key": key, "z1": f"images/{key}_z1.png", "z0": f"images/{key}_z0.png"})
    for name, table in (("articles.csv", rows), ("pairs.csv", pairs)):
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(table[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(table)
        write_bytes(out / name, buf.getvalue().encode())
    y1, y2 = sorted(outlets)
    sign = -1.0 if (y1, y2) == tuple(outlets) else 1.0
    return {"articles": out / "articles.csv", "pairs": out / "pairs.csv",
            "rho": {p: (sign * effect if p == politicians[0] else 0.0) for p in politicians}, "outlets": (y1, y2)}


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Write a planted synthetic study for counterface polarization.")
    ap.add_argument("out")
    ap.add_argument("--articles", type=int, default=300)
    ap.add_argument("--effect", type=float, default=3.0)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    info = make_study(a.out, articles=a.articles, effect=a.effect, size=a.size, seed=a.seed)
    print(f"wrote {info['articles']} and {info['pairs']}; true rho({info['outlets'][0]} vs {info['outlets'][1]}): "
          + ", ".join(f"{p} {r:+g}" for p, r in info["rho"].items()))


if __name__ == "__main__":  # pragma: no cover
    main()

"""The reference compositions.

``smilegan-pti``: the seed's pipeline on the released networks (FAN landmarks, e4e, PTI, the
InterFaceGAN smile direction on W+ rows 4-6, gaussian paste-back; pi_0 = the alpha = 0 reconstruction
through the same tuned generator, so a pair differs only in the attribute).

``tiny``: the identical code path on small deterministic random networks (dlib's offline detector,
a 64 px StyleGAN2, a small random e4e and ArcFace, a random LPIPS trunk, a seeded random direction on
rows 4-6, a handful of optimisation steps): runs offline in seconds. Its images are not meaningful
edits; it exists to test and demonstrate the plumbing.
"""

from __future__ import annotations

from counterface import Preset

#: the identity component that matches faces (``--face match``) and measures identity_independent: a
#: recogniser the tuner never optimised, offline (dlib's ResNet face descriptor)
MATCHER = "dlib"

#: architecture of the tiny generator (shared with the tiny e4e through the generator it inverts for)
TINY_GENERATOR = {"name": "stylegan2", "weights": None, "size": 64, "style_dim": 64, "n_mlp": 2,
                  "channel_multiplier": 1, "max_channels": 32, "seed": 0}


def smilegan_pti() -> Preset:
    return Preset(
        components={
            "aligner": {"name": "fan"},
            "inverter": {"name": "e4e"},
            "generator": {"name": "stylegan2"},
            "identity": {"name": "arcface"},
            "tuner": {"name": "pti"},
            "direction": {"name": "smile"},
            "blender": {"name": "gaussian"},
            "pi1": {"name": "shift"},
            "pi0": {"name": "reconstruction"},
        },
        # layers None: the direction's own default (4-6 for smile, as the seed)
        edit={"alpha": 1.0, "layers": None, "face": "largest", "seed": 0, "matcher": MATCHER},
        description="SmileGAN-PTI: fan + e4e + pti + InterFaceGAN smile (W+ 4-6) + gaussian, FFHQ StyleGAN2 1024",
    )


def tiny() -> Preset:
    return Preset(
        components={
            "aligner": {"name": "dlib"},
            "inverter": {"name": "e4e", "weights": None, "input_size": 64, "seed": 0},
            "generator": dict(TINY_GENERATOR),
            "identity": {"name": "arcface", "weights": None, "seed": 0},
            "tuner": {"name": "pti", "latent_steps": 10, "tune_steps": 10, "latent_lr": 0.02, "tune_lr": 2e-3,
                      "lpips_pretrained": False, "lpips_net": "alex", "resolution": None,
                      "tune_min_resolution": 16, "lpips_threshold": 0.0},
            "direction": {"name": "vector", "dim": 64, "seed": 0, "layers": "4-6", "attribute": "random",
                          "region": "mouth"},
            "blender": {"name": "gaussian"},
            "pi1": {"name": "shift"},
            "pi0": {"name": "reconstruction"},
        },
        edit={"alpha": 1.0, "layers": None, "face": "largest", "seed": 0, "matcher": MATCHER},
        description="the smilegan-pti code path on small deterministic random networks (offline, seconds; tests)",
    )

"""Edit regions follow the attribute: landmark hull masks, named regions, the pipeline's region mask
(the tuner's region loss) and the metrics' preserved area."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from counterface import ConfigError
from counterface.geometry import landmark_mask
from counterface.metrics import Evaluator, landmark_region
from counterface.testing import canonical_landmarks
from counterface.types import REGIONS, AlignedFace, Region, resolve_region

SIZE = 64


def face(lm=None, region_mask=None):
    lm = canonical_landmarks(SIZE) if lm is None else lm
    return AlignedFace(landmarks=lm, matrix=np.eye(2, 3), crop=np.zeros((SIZE, SIZE, 3), np.uint8), crop_landmarks=lm,
                       region_mask=region_mask)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), name=st.sampled_from(sorted(REGIONS)), dilate=st.floats(0.02, 0.1))
def test_landmark_mask_covers_its_landmarks_only(seed, name, dilate):
    rng = np.random.default_rng(seed)
    lm = canonical_landmarks(SIZE) + rng.normal(0, 1.0, (68, 2))
    idx = REGIONS[name].landmarks
    m = landmark_mask(lm, idx, SIZE, dilate)
    assert m.shape == (SIZE, SIZE) and m.dtype == np.float32 and set(np.unique(m)) <= {0.0, 1.0}
    pts = np.rint(lm[list(idx)]).astype(int).clip(0, SIZE - 1)
    assert np.all(m[pts[:, 1], pts[:, 0]] == 1.0)
    grown = landmark_mask(lm, idx, SIZE, dilate + 0.05)
    assert np.all(grown >= m) and grown.sum() > m.sum()  # dilation only adds


def test_named_regions_are_where_the_attribute_lives():
    f = face()
    lm = f.crop_landmarks
    mouth, eyes, whole = f.region("mouth"), f.region("eyes"), f.region("face")
    at = lambda m, i: m[int(round(lm[i, 1])), int(round(lm[i, 0]))]  # noqa: E731
    assert at(mouth, 62) == 1 and at(mouth, 37) == 0
    assert at(eyes, 37) == 1 and at(eyes, 44) == 1 and at(eyes, 62) == 0
    assert whole.sum() > eyes.sum() and whole.sum() > mouth.sum() and np.all(whole >= mouth)
    assert not hasattr(f, "mouth_mask")  # the region follows the attribute: face.region("mouth")
    assert np.array_equal(f.region([48, 54, 57]), landmark_mask(lm, [48, 54, 57], SIZE, 0.03))
    own = np.full((SIZE, SIZE), 0.5, np.float32)
    assert np.array_equal(face(region_mask=own).region(None), own)  # an aligner's own region
    assert np.array_equal(face().region(None), whole)


def test_builder_regions_and_errors():
    box = Region("box", builder=lambda f: np.pad(np.ones((8, 8), np.float32), ((0, SIZE - 8), (0, SIZE - 8))))
    assert face().region(box).sum() == 64
    assert resolve_region(lambda f: np.zeros((SIZE, SIZE))).builder is not None
    with pytest.raises(ConfigError, match="unknown region"):
        resolve_region("ears")
    with pytest.raises(ConfigError):
        resolve_region([70])
    with pytest.raises(ConfigError, match="shape"):
        face().region(Region("bad", builder=lambda f: np.zeros((3, 3))))


def test_metrics_region_follows_the_attribute():
    lm = canonical_landmarks(SIZE)
    ev = Evaluator(size=SIZE, region="eyes")
    eyes = ev.edit_region([lm], face(lm), 1.0)
    assert np.array_equal(eyes, landmark_region([lm], SIZE, REGIONS["eyes"].landmarks, 0.25))
    mouth = Evaluator(size=SIZE, region="mouth").edit_region([lm], face(lm), 1.0)
    whole = Evaluator(size=SIZE).edit_region([lm], face(lm), 1.0)  # default: the whole face
    at = lambda m, i: m[int(round(lm[i, 1])), int(round(lm[i, 0]))]  # noqa: E731
    assert at(eyes, 37) and not at(eyes, 57) and at(mouth, 57) and not at(mouth, 37)
    assert at(whole, 37) and at(whole, 57) and whole.sum() > max(eyes.sum(), mouth.sum())


def test_pipeline_region_mask_is_the_directions(fakes, tmp_path):
    from counterface import config
    from counterface.pipeline import Pipeline

    rng = np.random.default_rng(0)
    photo = np.ascontiguousarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8))
    masks = {}
    for region in ("eyes", "mouth"):
        cfg = config.resolve(preset="fake", sets=[f'direction.region="{region}"'])
        pipe = Pipeline.from_config(cfg)
        f = pipe.faces(photo)[0]
        masks[region] = pipe.region_mask(f)
        assert np.array_equal(masks[region], f.region(region))
    assert not np.array_equal(masks["eyes"], masks["mouth"])
    # several directions: the union of their regions
    cfg = config.resolve(preset="fake", sets=['direction.region="eyes"'])
    cfg["edit"]["directions"] = ["vector"]
    pipe = Pipeline.from_config(cfg)
    pipe._components["_directions"] = [("a", pipe.component("direction")),
                                       ("b", type("D", (), {"region": "mouth"})())]
    f = pipe.faces(photo)[0]
    assert np.array_equal(pipe.region_mask(f), np.maximum(f.region("eyes"), f.region("mouth")))


def test_tuner_region_weight():
    from counterface_pti.tuner import PTITuner

    assert PTITuner(lambda_region=0.25).lambda_region == 0.25
    with pytest.raises(TypeError):  # the old, smile-specific name is gone
        PTITuner(lambda_mouth=0.5)

"""Evidence from independent captures of the same people: photos that cannot be redistributed.

``tests/data`` holds one capture per person (redistributable photos only), so the always-run matching
and identity tests compare altered views of one capture. These tests use other days, light and poses
of two people (``obama.jpg``, ``biden.jpg``, ``two_people.jpg`` from ageitgey/face_recognition, whose
notices forbid publishing manipulated versions). They are collected only when those photos are
present (``$COUNTERFACE_SHARED/photos``, default ``../shared/photos``; see ``tests/conftest.py``), so
a clone without them runs, and skips, nothing here.
"""

from __future__ import annotations

import numpy as np
import pytest

from counterface.errors import TargetNotFoundError
from counterface.pipeline import Pipeline
from tests.conftest import EXTRA_PHOTOS as SHARED_PHOTOS
from tests.core.test_matching import faces_of
from tests.plugins.test_dlib_identity import embed_faces


@pytest.fixture(scope="module")
def dlib_identity():
    from counterface.registry import create

    return create("identity", "dlib")


# -- matching -----------------------------------------------
def test_independent_photos_pick_each_person_in_the_group(tmp_path):
    """biden.jpg and obama.jpg are other photos (another day, light, pose) of the two people of
    ../shared/photos/two_people.jpg, where Biden is the smaller face."""
    group = SHARED_PHOTOS / "two_people.jpg"
    pipe = Pipeline.from_preset("tiny", face="match")
    faces, photo = faces_of(group)
    for ref_name, expected in (("biden.jpg", "right"), ("obama.jpg", "left")):
        pipe.edit["reference"] = str(SHARED_PHOTOS / ref_name)
        (face,) = pipe.faces(photo)
        centre_x = np.asarray(face.landmarks)[:, 0].mean()
        assert (centre_x > photo.shape[1] / 2) == (expected == "right"), ref_name
        assert pipe.last_match.similarity >= 0.92 > min(pipe.last_match.similarities)
    biden = next(i for i, f in enumerate(faces) if np.asarray(f.landmarks)[:, 0].mean() > photo.shape[1] / 2)
    assert biden != 0  # not the largest face
    pipe.edit["reference"] = str(SHARED_PHOTOS / "lin-manuel-miranda.png")
    with pytest.raises(TargetNotFoundError, match="target_not_found"):
        pipe.faces(photo)


def test_same_person_across_independent_photos(dlib_identity):
    """Independent captures (../shared/photos): Obama's portrait against Obama and Biden in another
    photo, and Biden's portrait against both."""
    obama = embed_faces(dlib_identity, SHARED_PHOTOS / "obama.jpg")[0]
    biden = embed_faces(dlib_identity, SHARED_PHOTOS / "biden.jpg")[0]
    group = embed_faces(dlib_identity, SHARED_PHOTOS / "two_people.jpg")
    left = int(np.argmax(group @ obama))
    assert float(obama @ group[left]) >= dlib_identity.match_threshold > float(obama @ group[1 - left])
    assert float(biden @ group[1 - left]) >= dlib_identity.match_threshold > float(biden @ group[left])
    assert float(obama @ biden) < dlib_identity.match_threshold



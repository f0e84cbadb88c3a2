"""results.parquet: the CSV's table with real types (pandas/polars read it without guessing)."""

from __future__ import annotations

import csv
import json
import math

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from counterface.batch.store import Appender, write_table
from counterface.tables import IDENTITY_THRESHOLDS, flag_rows



def rows():
    base = {"job": "j", "sha256": "s", "z1": "pairs/x_z1.png", "z0": "pairs/x_z0.png", "pi0": "reconstruction"}
    return [
        {**base, "key": "a", "face": 0, "faces": 2, "alpha": 1.0, "face_width": 150.5,
         "seconds": {"tune": 1.25, "align": 0.5}, "match": {"similarity": 0.97, "threshold": 0.92, "recogniser": "dlib"},
         "identity": 0.91, "identity_independent": 0.95, "psnr_outside": math.inf, "score_delta": None,
         "politician": "Hopper", "year": 2019, "weight": 2, "ok": True, "attributes": [1, 2],
         "leakage": {"age": {"mean": 0.1}}},
        {**base, "key": "b", "face": 1, "faces": 2, "alpha": 2.0, "face_width": 99.0,
         "seconds": {"tune": 2.0, "align": 0.25, "metrics": 0.1}, "match": {"similarity": 0.93, "threshold": 0.92,
                                                                              "recogniser": "dlib"},
         "identity": 0.41, "identity_independent": 0.80, "psnr_outside": 31.5, "score_delta": None,
         "politician": "Collins", "year": None, "weight": 2.5, "ok": False, "attributes": [],
         "leakage": {"age": {"mean": -0.2}}},
    ]


def test_parquet_has_the_csv_columns_with_real_types(tmp_path):
    Appender(tmp_path / "results.jsonl").append(rows())
    write_table(tmp_path)
    table = pq.read_table(tmp_path / "results.parquet")
    with open(tmp_path / "results.csv") as f:
        header = next(csv.reader(f))
    assert table.column_names == header  # the same columns, in the same order
    types = {f.name: str(f.type) for f in table.schema}
    assert types["key"] == types["politician"] == types["match.recogniser"] == "string"
    assert types["face"] == types["faces"] == types["year"] == "int64"  # ints with a missing value stay ints
    for c in ("alpha", "face_width", "seconds.tune", "seconds.metrics", "match.similarity", "identity",
              "identity_independent", "psnr_outside", "weight", "score_delta"):  # weight: 2 and 2.5 -> float
        assert types[c] == "double", c
    assert types["ok"] == "bool"
    assert types["attributes"] == types["leakage"] == "string"  # nested values as JSON, like the CSV
    d = table.to_pylist()
    assert [r["key"] for r in d] == ["a", "b"]
    assert d[0]["seconds.tune"] == 1.25 and d[0]["seconds.metrics"] is None and d[1]["seconds.metrics"] == 0.1
    assert d[0]["psnr_outside"] == math.inf and d[1]["year"] is None and d[0]["year"] == 2019
    assert d[0]["score_delta"] is None  # a column with no value is a float column of nulls
    assert json.loads(d[0]["leakage"]) == {"age": {"mean": 0.1}} and json.loads(d[0]["attributes"]) == [1, 2]
    assert d[1]["weight"] == 2.5 and d[0]["weight"] == 2.0 and d[0]["ok"] is True


def test_metrics_rows_are_merged_into_both_tables(tmp_path):
    Appender(tmp_path / "results.jsonl").append(rows())
    Appender(tmp_path / "metrics.jsonl").append([{"key": "a", "sha256": "s", "job": "j", "face": 0, "alpha": 1.0,
                                                   "identity_independent_z1z0": 0.99}])
    write_table(tmp_path)
    t = pq.read_table(tmp_path / "results.parquet").to_pylist()
    assert t[0]["identity_independent_z1z0"] == 0.99 and t[1]["identity_independent_z1z0"] is None


def test_flag_rows_lists_pairs_below_either_threshold():
    r = rows()
    r[0].update(identity_z0=0.6, identity_z1z0=0.2, identity_independent_z0=0.99)
    flagged = flag_rows(r)
    assert [f["key"] for f in flagged] == ["a", "b"]
    assert flagged[0]["below"] == {"identity_z1z0": 0.2}
    assert flagged[1]["below"] == {"identity": 0.41, "identity_independent": 0.80}
    assert flagged[1]["z1"] == "pairs/x_z1.png"
    assert flag_rows(r, {"identity": 0.1, "identity_independent": 0.5}) == []
    assert IDENTITY_THRESHOLDS == {"identity": 0.5, "identity_independent": 0.92}
    # a superseded version of a row (same key, job, face and alpha, another photo) is not flagged
    old = {**r[1], "sha256": "old", "identity": 0.0}
    assert [f["below"] for f in flag_rows([old, r[1]]) if f["key"] == "b"] == [{"identity": 0.41,
                                                                                  "identity_independent": 0.80}]


_values = st.one_of(st.none(), st.integers(-2**62, 2**62), st.floats(allow_nan=False), st.text(max_size=5),
                    st.booleans())


@settings(max_examples=200, deadline=None)
@given(st.lists(_values, min_size=1, max_size=8))
def test_a_column_keeps_its_values_and_gets_the_narrowest_type(values):
    from counterface.batch.store import _arrow_column

    col = _arrow_column("user", values)
    present = [v for v in values if v is not None]
    back = col.to_pylist()
    assert [b is None for b in back] == [v is None for v in values]  # nulls exactly where values are missing
    if not present:
        assert str(col.type) == "double"
    elif all(isinstance(v, bool) for v in present):
        assert str(col.type) == "bool" and back == values
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        assert str(col.type) == "int64" and back == values
    elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        assert str(col.type) == "double" and back == [None if v is None else float(v) for v in values]
    else:
        assert str(col.type) == "string"
        assert back == [None if v is None else (v if isinstance(v, str) else str(v)) for v in values]

"""Reading the user's tables (articles, pairs, scores): CSV or JSONL rows, values as written."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from ..batch.manifest import jsonl_rows
from ..errors import ConfigError


def read_table(source: str | Path, what: str) -> list[dict[str, Any]]:
    """Rows of a CSV or JSONL table (values as written)."""
    src = Path(source)
    if not src.is_file():
        raise ConfigError(f"{what} not found: {src}")
    try:
        text = src.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {src}: {exc}") from None
    if src.suffix.lower() == ".csv":
        return [dict(r) for r in csv.DictReader(io.StringIO(text))]
    if src.suffix.lower() in (".jsonl", ".ndjson"):
        return [row for _, row in jsonl_rows(text, src)]
    raise ConfigError(f"{src}: {what} must be a .csv or .jsonl file")

"""`counterface pivots list|prune`: the pivot store that `counterface batch` keeps (OUT/pivots or --pivots)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from ..errors import ConfigError

_SIZE_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024**2, "MB": 1024**2, "G": 1024**3, "GB": 1024**3,
               "T": 1024**4, "TB": 1024**4}
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_size(text: str) -> int:
    """``'500M'``, ``'2GB'``, ``'1024'`` -> bytes (binary units)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text))
    if not m or m.group(2).upper() not in _SIZE_UNITS:
        raise ConfigError(f"--max-size expects a size such as 500M or 2G, got {text!r}")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).upper()])


def parse_age(text: str) -> float:
    """``'30d'``, ``'12h'``, ``'90m'``, ``'45s'``, ``'2w'`` -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", str(text))
    if not m:
        raise ConfigError(f"--older-than expects a duration such as 30d, 12h or 90m, got {text!r}")
    return float(m.group(1)) * _AGE_UNITS[m.group(2)]


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def _root(path: Path) -> Path:
    from ..batch import pivots

    root = pivots.resolve_root(path)
    if not root.is_dir():
        raise ConfigError(f"no pivot store at {path}")
    return root


def _describe(cfg) -> str:
    if not isinstance(cfg, dict):
        return "(configuration unknown)"
    parts = []
    for section in ("aligner", "inverter", "generator", "tuner"):
        value = cfg.get(section)
        if isinstance(value, dict) and value.get("name"):
            parts.append(f"{section}={value['name']}")
    edit = cfg.get("edit") or {}
    parts.append(f"seed={edit.get('seed')}")
    return ", ".join(parts)


def _report_links(links) -> None:
    """One warning line per link found in the store (never followed, listed or removed)."""
    import os

    for link in links:
        try:
            target = os.readlink(link)
        except OSError:
            target = "?"
        click.echo(f"warning: skipped link {link} -> {target} (links in a pivot store are never followed)", err=True)
    if links:
        click.echo(f"warning: {len(links)} link(s) skipped", err=True)


@click.group("pivots")
def pivots_cmd() -> None:
    """Show and bound the pivot store of `counterface batch` (OUT/pivots, or the --pivots DIR)."""


@pivots_cmd.command("list")
@click.argument("store", metavar="DIR", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the listing as JSON.")
def _list(store: Path, as_json: bool) -> None:
    """Count and size of the pivots in DIR (a batch output folder or a pivot store), per configuration."""
    from ..batch import pivots

    info = pivots.summary(_root(store))
    _report_links(info["skipped_links"])
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True))
        return
    click.echo(f"{info['root']}: {info['count']} pivot(s), {_human(info['bytes'])}")
    for name, c in sorted(info["configs"].items()):
        click.echo(f"  {name}  {c['count']:>7} pivot(s)  {_human(c['bytes']):>10}  last used {c['newest']}  "
                   f"{_describe(c['config'])}")


@pivots_cmd.command("prune")
@click.argument("store", metavar="DIR", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--max-size", default=None, metavar="SIZE",
              help="Remove the least recently used pivots until the store holds at most SIZE (e.g. 20G, 500M).")
@click.option("--older-than", default=None, metavar="AGE", help="Remove pivots unused for AGE (e.g. 30d, 12h).")
@click.option("--key", "keys", multiple=True, metavar="KEY", help="Remove this pivot (repeatable).")
@click.option("--config", "configs", multiple=True, metavar="DIGEST",
              help="Remove every pivot of this configuration (its folder name in `pivots list`; repeatable).")
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
def _prune(store: Path, max_size, older_than, keys, configs, dry_run) -> None:
    """Remove pivots from DIR by size, age, key or configuration (a removed pivot is tuned again when
    a batch needs it)."""
    from ..batch import pivots

    if max_size is None and older_than is None and not keys and not configs:
        raise ConfigError("pivots prune: give --max-size, --older-than, --key or --config")
    root = _root(store)
    skipped: list[Path] = []
    gone = pivots.prune(root, max_bytes=None if max_size is None else parse_size(max_size),
                        older_than=None if older_than is None else parse_age(older_than), keys=tuple(keys),
                        configs=tuple(configs), dry_run=dry_run, skipped=skipped)
    _report_links(skipped)
    left = pivots.summary(root)
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {len(gone)} pivot(s), {_human(sum(e.size for e in gone))}; "
               f"{left['count'] - (len(gone) if dry_run else 0)} left")

"""`counterface weights`: list, download, import, verify and locate the released weights files."""

from __future__ import annotations

import json

import click

from .. import weights as w
from ..errors import WeightsError


def _human(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _names(names: tuple[str, ...]) -> list[str]:
    if not names or names == ("all",):
        return list(w.specs())
    for n in names:
        w.get_spec(n)  # unknown names fail before any work
    return list(names)


@click.group("weights")
def weights_cmd() -> None:
    """Released weights files: what is present, where, and how to get the rest."""


@weights_cmd.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def _list(as_json: bool) -> None:
    """List every known file: state, size, licence, path.

    States: missing, present, verified, differs (an unverified hash differs), hash-mismatch. Uses hashes memoised by earlier checks; run `counterface weights verify` to hash new files.
    """
    rows = [st.to_dict() for st in w.iter_status()]
    if as_json:
        click.echo(json.dumps({"cache_dir": str(w.cache_dir()), "files": rows}, indent=2))
        return
    if not rows:
        click.echo("no weights files are registered (are the counterface plugins installed?)")
        return
    width = max(len(r["name"]) for r in rows)
    click.echo(f"{'name':<{width}}  {'state':<13}  {'size':>9}  licence | path")
    for r in rows:
        size = r["size"] if r["size"] is not None else r["expected_size"]
        click.echo(f"{r['name']:<{width}}  {r['state']:<13}  {_human(size):>9}  {r['licence']} | {r['path']}")
    click.echo(f"cache: {w.weights_dir()} (set COUNTERFACE_HOME to move it)")


@weights_cmd.command("download")
@click.argument("names", nargs=-1, required=True, metavar="NAME...|all")
@click.option("--force", is_flag=True, help="Download again even if a copy is present.")
def _download(names: tuple[str, ...], force: bool) -> None:
    """Download files (or `all`), with resume and hash checks.

    Prints each file's path. Progress bars go to stderr (COUNTERFACE_PROGRESS=0 turns them off). Exit 4 if any file fails.
    """
    failed = 0
    for name in _names(names):
        try:
            p = w.download(name, force=force)
        except WeightsError as exc:
            if len(names) == 1 and names != ("all",):
                raise
            click.echo(f"error: {exc}", err=True)
            failed += 1
            continue
        click.echo(f"{name}: {p}")
    if failed:
        raise WeightsError(f"{failed} file(s) could not be downloaded (see above)")


@weights_cmd.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False))
def _import(name: str, file: str) -> None:
    """Adopt a FILE you downloaded yourself as NAME.

    The file is copied (never moved or modified) after its size and sha256 are checked; the real
    sha256 is printed.
    """
    st = w.import_file(name, file)
    click.echo(f"imported {name} -> {st.path}")
    spec = st.spec
    if st.state == w.VERIFIED and spec is not None and spec.sha256_verified:
        click.echo(f"sha256 {st.sha256} (verified)")
    else:
        click.echo(f"sha256 {st.sha256}")
        click.echo(f"note: {st.message}", err=True)


@weights_cmd.command("verify")
@click.argument("names", nargs=-1, metavar="[NAME...]")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def _verify(names: tuple[str, ...], as_json: bool) -> None:
    """Hash files and compare them with the registry.

    Without NAME, every present file. Exit 4 if a file fails a trusted size/hash check, or if a named file is missing.
    """
    explicit = bool(names)
    results = [w.verify(n) for n in _names(names)]
    if not explicit:
        results = [r for r in results if r.state != w.MISSING]
    bad = [r for r in results if r.state == w.MISMATCH or (explicit and r.state == w.MISSING)]
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        if not results:
            click.echo("no weights files are present yet (see `counterface weights list`)")
        for r in results:
            click.echo(f"{r.name}: {r.state}: {r.message} [{r.path}]")
    if bad:
        raise WeightsError(f"{len(bad)} file(s) failed verification: {', '.join(r.name for r in bad)}")


@weights_cmd.command("path")
@click.argument("name")
def _path(name: str) -> None:
    """Print the path of NAME (exit 4 if missing).

    When it is missing, the error says where to put it. Never downloads.
    """
    p = w.path(name)
    if not p.is_file():
        spec = w.get_spec(name)
        raise WeightsError(w.missing_message(spec, "it is not present"))
    click.echo(str(p))

"""`counterface plugins`, `counterface presets` and `counterface config`."""

from __future__ import annotations

import json

import click

from .. import plugins as plugin_mod
from .. import registry
from ._common import pipeline_options, resolve_config


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_cmd(as_json: bool) -> None:
    """List every registered component by kind, with the package that provides it."""
    kinds = registry.kinds()
    tables = (*kinds, registry.PRESET)
    rows = []
    for kind in tables:
        for name, e in sorted(registry.entries(kind).items()):
            rows.append({"kind": kind, "name": name, "package": e.package, "version": e.version,
                         "plugin": e.plugin, "description": e.description})
    failures = [{"plugin": f.name, "package": f.package, "error": f.error} for f in plugin_mod.failures()]
    skipped = plugin_mod.skipped()  # left out by COUNTERFACE_PLUGINS / COUNTERFACE_DISABLE_PLUGINS / --disable-plugin
    kind_rows = [{"kind": k.name, "contract": f"{k.contract.__module__}.{k.contract.__qualname__}", "hook": k.hook,
                  "sections": list(k.sections), "scope": k.scope, "plugin": k.plugin} for k in kinds.values()]
    if as_json:
        click.echo(json.dumps({"components": rows, "kinds": kind_rows, "failures": failures, "skipped": skipped},
                              indent=2))
        return
    for kind in tables:
        kind_rows = [r for r in rows if r["kind"] == kind]
        declared_by = kinds[kind].plugin if kind in kinds else None
        click.echo(f"{kind} (a kind declared by plugin {declared_by!r}):" if declared_by else f"{kind}:")
        if not kind_rows:
            click.echo("  (none)")
        for r in kind_rows:
            pkg = f"{r['package']} {r['version']}" if r["package"] else r["plugin"]
            desc = f"  {r['description']}" if r["description"] else ""
            click.echo(f"  {r['name']:<16} [{pkg}]{desc}")
    for f in failures:
        click.echo(f"warning: plugin {f['plugin']!r} ({f['package'] or 'unknown package'}): {f['error']}",
                   err=True)
    if skipped:
        click.echo(f"note: plugins left out by the selection: {', '.join(sorted(skipped))}", err=True)


@click.command("presets")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def presets_cmd(as_json: bool) -> None:
    """List the named pipeline compositions and what each one chooses."""
    out = {}
    for name in registry.presets():
        p = registry.get_preset(name)
        out[name] = {"description": p.description, **p.to_config()}
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    for name, cfg in out.items():
        click.echo(f"{name}: {cfg.pop('description')}")
        for kind, section in cfg.items():
            if kind == "edit":
                if section:
                    click.echo(f"  edit: {', '.join(f'{k}={v}' for k, v in section.items())}")
                continue
            section = dict(section)
            comp = section.pop("name", "?")
            extra = f" ({', '.join(f'{k}={v}' for k, v in section.items())})" if section else ""
            click.echo(f"  {kind:<10} {comp}{extra}")


@click.command("config")
@pipeline_options
@click.option("--check", is_flag=True, help="Also build every component (no weights are loaded) to validate parameters.")
def config_cmd(preset, config_file, sets, components, check: bool) -> None:
    """Print the resolved configuration (preset + --config + --<kind> + --set) as JSON."""
    cfg = resolve_config(preset, config_file, components, sets)
    if check:
        from ..pipeline import Pipeline

        pipe = Pipeline.from_config(cfg)
        pipe.check_operators()  # --pi1 on with a direction without an intercept
        for section in registry.sections():
            if pipe.has(section):
                pipe.component(section)
    click.echo(json.dumps(cfg, indent=2, default=str))

"""The command reference, generated from the command line itself.

    python -m chronorec.cli.reference > docs/reference/cli.md

Walks the click command tree (typer's) of :data:`chronorec.cli.main.app`: every command with its help, its
arguments and its options (names, type, default, help). tests/test_cli.py fails when the
committed page differs from what this prints.
"""

from __future__ import annotations

import inspect
from typing import Any

HEADER = """# Command reference

[Docs index](../index.md)

Generated from the command line by `python -m chronorec.cli.reference > docs/reference/cli.md`;
do not edit by hand. Every command takes `--config FILE` (YAML, TOML or JSON) carrying its options
under the config sections named in `chronorec.workflows.run_config`; options given on the command
line win. Errors a user can fix print one `error: ...` line and exit with status 1.
"""


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|").replace("<", "&lt;")


def _default(param: Any) -> str:
    if param.default is None or param.default == () or getattr(param, "is_flag", False) and param.default is False:
        return ""
    if isinstance(param.default, list | tuple):
        return ", ".join(map(str, param.default))
    return str(param.default)


def _names(param: Any) -> str:
    names = list(param.opts) + list(getattr(param, "secondary_opts", []))
    return " / ".join(f"`{n}`" for n in names)


def _type(param: Any) -> str:
    if getattr(param, "is_flag", False):
        return "flag"
    if param.metavar:
        return param.metavar
    kind = param.bare_type() if hasattr(param, "bare_type") else param.type.name  # typer's, else click's
    return str(kind).lower()


def command_section(name: str, command: Any) -> list[str]:
    """The Markdown of one command: its help, then a table of its arguments and options."""
    lines = [f"## `chronorec {name}`", "", inspect.cleandoc(command.help or ""), ""]
    args = [p for p in command.params if p.param_type_name == "argument"]
    if args:
        lines += ["| argument | help |", "|---|---|"]
        lines += [f"| `{p.name.upper()}` | {_cell(getattr(p, 'help', ''))} |" for p in args]
        lines.append("")
    lines += ["| option | type | default | help |", "|---|---|---|---|"]
    for p in command.params:
        if p.param_type_name == "option" and p.name != "help":
            lines.append(f"| {_names(p)} | {_type(p)} | {_cell(_default(p))} | {_cell(p.help)} |")
    return [*lines, ""]


def reference(app: Any = None) -> str:
    """The whole command reference as Markdown."""
    import typer.main

    if app is None:
        from chronorec.cli.main import app
    group = typer.main.get_command(app)
    commands = {}  # a command group (``datasets``) lists its sub-commands as "datasets synth"
    for n, c in group.commands.items():
        subs = getattr(c, "commands", None)
        commands |= {f"{n} {s}": sc for s, sc in subs.items()} if subs else {n: c}
    out = [HEADER, "| command | what it does |", "|---|---|"]
    out += [
        f"| [`{n}`](#chronorec-{n.replace(' ', '-')}) | {_cell(c.get_short_help_str(200))} |"
        for n, c in commands.items()
    ]
    out.append("")
    for n, c in commands.items():
        out += command_section(n, c)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(reference(), end="")

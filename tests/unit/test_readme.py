"""README shows every command a user can run: each top-level command, and each
subcommand of a group, appears as `esbackup GROUP SUB` in its usage examples."""
import re
from pathlib import Path

import click

from esbackup.cli import COMMANDS, cli

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def phrases() -> list[str]:
    ctx = click.Context(cli)
    found = []
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None, name
        subs = sorted(command.commands) if isinstance(command, click.Group) else [""]
        found += [f"esbackup {name} {sub}".rstrip() for sub in subs]
    return found


def test_every_command_is_in_the_readme():
    assert len(phrases()) > 40  # the groups and their subcommands, all seen
    missing = [p for p in phrases() if not re.search(re.escape(p) + r"(?![\w-])", README)]
    assert missing == []

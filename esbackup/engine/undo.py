"""The undo ledger of a run: what it made on the nodes, and how to take each back.

A run notes each thing as it makes it (a snapshot, a target snapshot, a hold,
files), under a name, with the command that removes it; what it hands over
(a whole backup, a snapshot the next run resumes from) it forgets. On failure
`undo` runs what is left, newest first, best effort: the run's own error wins
(engine/recover.py). Nothing else decides what a failed run leaves behind.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from esbackup.domain.models import Node
from esbackup.drivers import files
from esbackup.drivers.session import Reporter, Sessions
from esbackup.engine import recover


@dataclass
class Undo:
    """Entries by name, in the order made: (node, argv that takes it back); and
    the files made on one node, removed in one call."""

    entries: dict[str, tuple[Node, list[str]]] = field(default_factory=dict)
    files: dict[str, Node] = field(default_factory=dict)  # path -> its node

    def made(self, name: str, node: Node, argv: list[str]) -> None:
        """Note a thing made; a name noted again is made again (moved to the end)."""
        self.entries.pop(name, None)
        self.entries[name] = (node, argv)

    def made_files(self, node: Node, *paths: str) -> None:
        self.files.update(dict.fromkeys(paths, node))

    def forget(self, name: str) -> None:
        """Keep it: it is not this run's to take back (any more)."""
        self.entries.pop(name, None)
        self.files.pop(name, None)

    def __contains__(self, name: str) -> bool:
        return name in self.entries or name in self.files

    def steps(self) -> list[tuple[Node, list[str]]]:
        """What undo runs: the newest first (a hold goes before its snapshot), then
        one removal per node of the files."""
        by_node: dict[str, tuple[Node, list[str]]] = {}
        for path, node in self.files.items():
            by_node.setdefault(node.name, (node, []))[1].append(path)
        return [*reversed(self.entries.values()),
                *((node, files.remove(*paths)) for node, paths in by_node.values())]

    def undo(self, reporter: Reporter | None = None, *, sessions: Sessions) -> None:
        recover.best_effort(self.steps(), reporter, sessions=sessions)
        self.entries.clear()
        self.files.clear()

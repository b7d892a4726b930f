"""Prometheus metrics in node_exporter's textfile format, written atomically.

Per definition: when its last ok run finished, how long it took and how big
its backup was, and the outcome of its last run. Per backup node: backups by
status, and backups whose last verify failed. Per copy: its last success and
lag. Overall: how many definitions
there are (all, and active), and when the metrics were written.

Every series is there for every definition and backup node, NaN or 0 where
there is no data (a definition never backed up has a NaN last success and 0
for each last outcome), so an alert never mistakes a missing series for a
healthy one; an empty catalog says `esbackup_definitions 0`.

node_exporter reads *.prom files from its textfile directory; the file is
written beside its final name and renamed, so a scrape never sees half of it.
"""
from __future__ import annotations

import math
import os
import tempfile
from datetime import datetime
from pathlib import Path

from esbackup.catalog.core import Catalog
from esbackup.domain.models import STATUSES, saved_id

OUTCOMES = ("ok", "failed", "skipped")
PREFIX = "esbackup"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


class Family:
    def __init__(self, name: str, help_text: str, kind: str = "gauge") -> None:
        self.name, self.help, self.kind = f"{PREFIX}_{name}", help_text, kind
        self.samples: list[str] = []

    def add(self, value: float, **labels: str) -> None:
        number = float(value)
        if math.isnan(number):
            text = "NaN"  # the exposition format's spelling
        else:
            text = str(int(number)) if number.is_integer() else repr(number)
        self.samples.append(f"{self.name}{_labels(**labels) if labels else ''} {text}")

    def text(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}",
                *self.samples]


def collect(cat: Catalog, now: datetime) -> str:
    success = Family("last_success_timestamp_seconds",
                     "When the definition's last ok run finished (Unix time; NaN: never).")
    duration = Family("last_duration_seconds",
                      "How long the definition's last ok run took (NaN: none).")
    size = Family("last_size_bytes",
                  "Size of the backup the definition's last ok run made (NaN: none).")
    outcome = Family("last_run_outcome",
                     "1 for the outcome of the definition's last run (all 0: never run).")
    backups = Family("backups", "Backups per backup node and status.")
    verify = Family("verify_failed_backups", "Backups whose last verify found damage.")
    definitions = Family("definitions", "Backup definitions in the catalog.")
    active = Family("active_definitions", "Active backup definitions in the catalog.")
    generated = Family("metrics_timestamp_seconds", "When these metrics were written.")
    last_ok, last = cat.last_runs("ok"), cat.last_runs()
    found = cat.definitions()
    for d in found:
        labels = {"definition": d.ref, "node": d.node}
        def_id = saved_id(d.id, f"definition {d.ref}")
        run = last_ok.get(def_id)
        if run is not None and run.finished:
            success.add(_seconds(run.finished), **labels)
            duration.add(run.duration or 0, **labels)
            size.add(run.size or 0, **labels)
        else:
            for family in (success, duration, size):
                family.add(math.nan, **labels)
        last_outcome = last[def_id].outcome if def_id in last else None
        for name in OUTCOMES:
            outcome.add(int(last_outcome == name), **labels, outcome=name)
    counts = cat.backup_counts()
    nodes = {n.name for n in cat.nodes() if n.backup} | {n for n, _ in counts}
    for node in sorted(nodes):
        for status in STATUSES:
            backups.add(counts.get((node, status), 0), node=node, status=status)
        verify.add(counts.get((node, "verify_failed"), 0), node=node)
    definitions.add(len(found))
    active.add(sum(d.active for d in found))
    copies = copy_families(cat)
    generated.add(now.timestamp())
    families = (success, duration, size, outcome, backups, verify, definitions, active,
                *copies, generated)
    return "\n".join(line for f in families for line in f.text()) + "\n"


def copy_families(cat: Catalog) -> tuple[Family, Family]:
    """Per copy (issue 20): when its last run went well, and its lag: how much older
    the newest backup it holds is than the definition's newest ok backup."""
    success = Family("copy_last_success_timestamp_seconds",
                     "When the copy's last successful run finished (Unix time).")
    lag = Family("copy_lag_seconds", "The definition's newest ok backup minus the newest the "
                                     "copy holds (seconds; 0: up to date).")
    found = cat.copy_definitions()
    if not found:  # no copies: no series, and no second pass over every definition
        return success, lag
    newest = {d.id: last_ok for d, _, last_ok in cat.definition_states()}
    held = cat.copy_newest()
    for c in found:
        labels = {"copy": c.ref, "node": c.node}
        success.add(_seconds(c.last_ok) if c.last_ok else math.nan, **labels)  # never: NaN
        primary, copied = newest.get(c.definition_id), held.get(c.id or 0)
        since = copied or c.created or primary  # holding none: since it was made
        lag.add(max(0.0, _seconds(primary) - _seconds(since)) if primary and since else 0.0,
                **labels)  # no ok backup to copy: nothing behind
    return success, lag


def write_atomically(path: Path, text: str) -> None:
    """Write beside `path` and rename over it; readable by node_exporter (0644)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""Per-consumer verdicts of a run: does the device pass what QEMU and cloud-hypervisor do with it?

A result row belongs to a consumer by its test name (suites/consumers: `test_consumer_<id>...`) or,
for results recorded by other lanes (e.g. a real QEMU migrating the device), by a test id or rule
starting with `consumer.<id>`.
"""
from __future__ import annotations

import dataclasses
from collections import Counter

#: Verdict of a group of results: the first outcome present, in this order.
PRIORITY = ("fail", "infra-error", "known-issue", "pass", "gated", "not-supported", "skipped")


#: The consumer paths the scenarios model (suitelib/consumers.py, docs/consumers.md).
QEMU_KERNEL_PATH = "QEMU's kernel VFIO path (hw/vfio/migration.c on a data fd)"
CH_KERNEL_PATH = "cloud-hypervisor's kernel VFIO path (pci/src/vfio.rs, vmm/src/lib.rs)"
#: Said beside QEMU's lines for a vfio-user device: the path modelled is not one QEMU can take.
QEMU_VFIO_USER = ("QEMU's vfio-user client (hw/vfio-user/) has no migration: QEMU cannot migrate this "
                  "device today; the line models its kernel path as if it could")
#: Said beside cloud-hypervisor's lines for a vfio-user device.
CH_VFIO_USER = ("cloud-hypervisor's vfio-user device (pci/src/vfio_user.rs) has no migration either: its "
                "snapshots and migrations drop this device's state without an error, so cloud-hypervisor "
                "cannot migrate it; the lines model its kernel path as if it could")
#: Said beside the lines for a kernel VFIO device: both consumers can migrate it.
QEMU_KERNEL = "QEMU migrates a kernel VFIO device that reports VFIO_MIGRATION_STOP_COPY"
CH_KERNEL = ("cloud-hypervisor migrates it with migration v2 (snapshot/restore; live migration only with "
             "device DMA logging and without a virtual IOMMU)")


@dataclasses.dataclass(frozen=True)
class Consumer:
    id: str
    label: str
    tests: tuple[str, ...]          # test function names (and their `_...` variants)
    path: str = ""                  # the consumer path the scenario models


CONSUMERS: tuple[Consumer, ...] = (
    Consumer("qemu-source", "QEMU source", ("test_consumer_qemu_source",), QEMU_KERNEL_PATH),
    Consumer("qemu-dirty-tracking", "QEMU device dirty tracking", ("test_consumer_qemu_dirty_tracking",),
             QEMU_KERNEL_PATH),
    Consumer("qemu-destination", "QEMU destination", ("test_consumer_qemu_destination",), QEMU_KERNEL_PATH),
    Consumer("qemu-recovery", "QEMU recovery", ("test_consumer_qemu_recovery",), QEMU_KERNEL_PATH),
    Consumer("ch-snapshot", "cloud-hypervisor snapshot", ("test_consumer_ch_snapshot",), CH_KERNEL_PATH),
    Consumer("ch-restore", "cloud-hypervisor restore", ("test_consumer_ch_restore",), CH_KERNEL_PATH),
    Consumer("ch-live-migration", "cloud-hypervisor live migration", ("test_consumer_ch_live_migration",),
             CH_KERNEL_PATH),
    Consumer("ch-recovery", "cloud-hypervisor recovery", ("test_consumer_ch_recovery",), CH_KERNEL_PATH),
    Consumer("hygiene", "uAPI hygiene (both)", ("test_consumer_hygiene",)),
)


@dataclasses.dataclass(frozen=True)
class Verdict:
    consumer: Consumer
    outcome: str
    counts: dict[str, int]
    notes: tuple[str, ...]          # failed rules, or why nothing ran

    def line(self) -> str:
        extra = f" ({'; '.join(self.notes)})" if self.notes else ""
        return f"{self.consumer.label}: {self.outcome}{extra}"


def consumer_of(row: dict) -> Consumer | None:
    """The consumer a result row speaks for (None: not a consumer scenario)."""
    test_id, rule = row.get("test_id") or "", row.get("rule") or ""
    name = test_id.split("[", 1)[0]
    for consumer in CONSUMERS:
        key = f"consumer.{consumer.id}"
        if test_id.startswith(key) or rule == key:
            return consumer
    for consumer in CONSUMERS:
        if any(name == t or name.startswith(t + "_") for t in consumer.tests):
            return consumer
    return None


def verdicts(rows: list[dict]) -> list[Verdict]:
    """One verdict per consumer that has results in `rows`, in CONSUMERS order."""
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        consumer = consumer_of(row)
        if consumer is not None:
            grouped.setdefault(consumer.id, []).append(row)
    out = []
    for consumer in CONSUMERS:
        group = grouped.get(consumer.id)
        if not group:
            continue
        counts = Counter(r["outcome"] for r in group)
        outcome = next((o for o in PRIORITY if counts.get(o)), group[0]["outcome"])
        out.append(Verdict(consumer, outcome, dict(counts), _notes(outcome, group)))
    return out


def _notes(outcome: str, group: list[dict]) -> tuple[str, ...]:
    if outcome in ("fail", "infra-error", "known-issue"):
        return tuple(sorted({r.get("rule") or r["test_id"] for r in group if r["outcome"] == outcome}))
    if outcome in ("not-supported", "gated"):
        first = next((r.get("message") or "" for r in group if r["outcome"] == outcome), "")
        return (_short(first.removeprefix("Skipped: ").removeprefix(f"{outcome}: ")),) if first else ()
    return ()


def _short(reason: str) -> str:
    """The reason up to its first ': ' (what, not the consequence), at most 160 characters."""
    cut = reason.find(": ", 20)
    while cut > 0 and reason.count("(", 0, cut) != reason.count(")", 0, cut):   # not inside (...)
        cut = reason.find(": ", cut + 1)
    reason = reason[:cut] if cut > 0 else reason
    return reason if len(reason) <= 160 else reason[:157] + "..."


def on_vfio_user(rows: list[dict]) -> bool:
    """True when the rows are of a vfio-user device (its device ids name the socket)."""
    for row in rows:
        devices = row.get("devices") or ()
        if isinstance(devices, str):
            devices = devices.split(",")
        if any(str(d).strip().strip('"[]').startswith("vfio-user:") for d in devices):
            return True
    return False


def path_note(rows: list[dict]) -> str:
    """Which consumer paths the lines model and whether each consumer can migrate this kind of
    device (on vfio-user neither can: the lines model their kernel paths as if they could)."""
    found = {v.consumer.path for v in verdicts(rows) if v.consumer.path}
    if not found:
        return ""
    vfio_user = on_vfio_user(rows)
    parts = [f"models {'; '.join(sorted(found))}"]
    if QEMU_KERNEL_PATH in found:
        parts.append(QEMU_VFIO_USER if vfio_user else QEMU_KERNEL)
    if CH_KERNEL_PATH in found:
        parts.append(CH_VFIO_USER if vfio_user else CH_KERNEL)
    return "; ".join(parts)


def summary_line(rows: list[dict]) -> str:
    """'QEMU source: pass, QEMU destination: pass, ...' (empty when no consumer scenario ran).

    Neighbours with the same verdict for the same reason share one entry, so a profile that cannot
    migrate at all reads 'QEMU source, ..., cloud-hypervisor recovery: not-supported (why)'."""
    groups: list[list[Verdict]] = []
    for v in verdicts(rows):
        same = groups and (groups[-1][0].outcome, groups[-1][0].notes) == (v.outcome, v.notes)
        if same and v.outcome != "pass":
            groups[-1].append(v)
        else:
            groups.append([v])
    return ", ".join(", ".join(v.consumer.label for v in g[:-1]) + (", " if len(g) > 1 else "") + g[-1].line()
                     for g in groups)


def render_html(rows: list[dict]) -> str:
    """A small table for the HTML report (empty when no consumer scenario ran)."""
    from .outcomes import shown, style
    from .page import badge, esc, table
    found = verdicts(rows)
    if not found:
        return ""
    body = [[esc(v.consumer.label), badge(shown({"outcome": v.outcome}), ""), esc("; ".join(v.notes)),
             esc(", ".join(f"{style(k).label} {n}" for k, n in sorted(v.counts.items())))]
            for v in found]
    note = path_note(rows)
    note_html = f"<p class='note'>{esc(note)}</p>" if note else ""
    return "<h3>Consumers</h3>" + note_html + table(["consumer", "verdict", "why", "results"], body, "consumers")


def print_run_lines(store, after_run_id: int, out=print) -> None:
    """At the end of `vfio-conform run`: one per-consumer line for each run recorded after `after_run_id`."""
    runs = [r for r in store.runs(limit=1000) if r["id"] > after_run_id]
    for run in sorted(runs, key=lambda r: r["id"]):
        rows = store.results(run["id"])
        line = summary_line(rows)
        if line:
            out(f"consumers [{run['profile']}, run #{run['id']}]: {line}")
            note = path_note(rows)
            if note:
                out(f"consumers [{run['profile']}, run #{run['id']}]: ({note})")

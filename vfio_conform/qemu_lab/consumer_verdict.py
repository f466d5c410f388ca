"""Verdicts of the real-consumer lane: what QEMU's migration attempts mean, and whose fault a failure is.

Input: the attempts consumer_guest.py recorded (QEMU's own error text per stage), the lab kernel's
build configuration and the profile. Output: typed result records for the store, one per attempt,
plus one saying whether the DMA logging the profile declares is usable by QEMU on that kernel.

A failure's cause is one of:
- kernel configuration: DMA_LOGGING_REPORT fails with EOPNOTSUPP because the kernel is built without
  CONFIG_IOMMUFD_DRIVER (include/linux/iova_bitmap.h: iova_bitmap_alloc() is then a stub returning
  -EOPNOTSUPP, so no driver can report dirty pages on that kernel);
- driver: the device refused a step of QEMU's sequence or the register did not arrive;
- consumer: QEMU itself refused (an option or a feature it lacks);
- lab: the nested VM or the harness failed before the device was involved (an infra-error).
"""
from __future__ import annotations

import dataclasses
import enum
import re
from pathlib import Path
from typing import Any

from ..model.spec import Rule
from .consumer_guest import NOT_CONVERGED
from ..results import Outcome, TestRecord

RULE_MIGRATION = Rule(
    "consumer.qemu-real-migration",
    "QEMU, as a user runs it (default options), live-migrates a VM with the device assigned: "
    "a register written on the source reads back on the destination.",
    "QEMU 10.0 hw/vfio/migration.c; docs/devel/migration/vfio.rst")
RULE_DMA_LOGGING = Rule(
    "consumer.qemu-dma-logging-usable",
    "A device whose profile declares DMA logging lets QEMU use it (device dirty page tracking) "
    "during migration on this kernel.",
    "QEMU 10.0 hw/vfio/common.c; include/uapi/linux/vfio.h VFIO_DEVICE_FEATURE_DMA_LOGGING_*")
#: The suites' rule (model/spec.py) that the lane measures with QEMU itself: a record of what QEMU
#: did (converged, or still in pre-copy at the deadline) beside the scenario's prediction.
CONVERGES = "consumer.qemu-converges"
#: Stages of an attempt's failure that come after the migration completed (consumer_guest.py).
AFTER_SWITCH_OVER = ("incoming", "compare")
#: QEMU's VFIO_MIG_STOP_COPY_SIZE: the stop-copy size it counts when MIG_DATA_SIZE fails.
QEMU_FALLBACK_STOP_COPY = 100 << 30
RULES = {r.id: r for r in (RULE_MIGRATION, RULE_DMA_LOGGING)}

#: Where the kernel makes DMA_LOGGING_REPORT fail without CONFIG_IOMMUFD_DRIVER.
IOVA_BITMAP_LINK = ("https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/"
                    "include/linux/iova_bitmap.h?h=v6.12")
WORKAROUND_OPTION = "x-device-dirty-page-tracking=off"
KCONFIG = "CONFIG_IOMMUFD_DRIVER"


class Cause(str, enum.Enum):
    """Whose fault a failed consumer attempt is."""

    NONE = ""
    DRIVER = "driver"
    KERNEL_CONFIG = "kernel configuration"
    CONSUMER = "consumer"
    LAB = "lab"


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One migration attempt as the guest recorded it."""

    label: str
    options: tuple[str, ...]
    ok: bool
    stage: str
    error: str
    written: int
    read: int | None
    seconds: dict[str, float]
    warnings: tuple[str, ...] = ()
    #: QEMU's exact pending-size queries of the device (consumer_guest.pending_exact): how many, the
    #: stop-copy sizes it counted; None when the attempt was not traced.
    exact_queries: int | None = None
    stopcopy_sizes: tuple[int, ...] = ()

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "Attempt":
        exact = doc.get("pending_exact") or {}
        return cls(label=str(doc["label"]), options=tuple(doc.get("options", ())), ok=bool(doc["ok"]),
                   stage=str(doc.get("stage", "")), error=str(doc.get("error", "")),
                   written=int(doc.get("written", 0)),
                   read=None if doc.get("read") is None else int(doc["read"]),
                   seconds=dict(doc.get("seconds", {})), warnings=tuple(doc.get("warnings", ())),
                   exact_queries=int(exact["queries"]) if "queries" in exact else None,
                   stopcopy_sizes=tuple(int(x) for x in exact.get("stopcopy", ())))

    @property
    def how(self) -> str:
        """The QEMU options of this attempt, for test ids and messages."""
        return ",".join(self.options) or "default"


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """A classified failure: cause, one-line explanation."""

    cause: Cause
    why: str


def kernel_config(path: Path) -> dict[str, str] | None:
    """`CONFIG_X -> value` of a kernel .config (`# CONFIG_X is not set` maps to "n"); None if absent."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    config: dict[str, str] = {}
    for line in text.splitlines():
        unset = re.match(r"#\s*(CONFIG_\w+) is not set", line)
        if unset:
            config[unset.group(1)] = "n"
        elif line.startswith("CONFIG_") and "=" in line:
            key, value = line.split("=", 1)
            config[key] = value.strip()
    return config


def iommufd_driver(config: dict[str, str] | None) -> bool | None:
    """Whether the kernel has CONFIG_IOMMUFD_DRIVER (a hidden symbol: absent means off); None unknown."""
    if config is None:
        return None
    return config.get(KCONFIG, "n") in ("y", "m")


_DMA_REPORT = re.compile(r"DMA logging report", re.I)
_DMA_START = re.compile(r"DMA logging (start|stop)|dirty.?track", re.I)
_EOPNOTSUPP = re.compile(r"Operation not supported|EOPNOTSUPP")
_CONSUMER = re.compile(r"Property '[^']*' not found|invalid parameter|unknown option|"
                       r"is not a valid|not supported by this QEMU", re.I)
_DEVICE_STAGES = ("migrate", "incoming", "compare", "write", "read")


def diagnose(attempt: Attempt, config: dict[str, str] | None) -> Diagnosis:
    """Classify a failed attempt from QEMU's error text, the stage and the kernel configuration."""
    text = attempt.error
    if _DMA_REPORT.search(text) and _EOPNOTSUPP.search(text):
        has = iommufd_driver(config)
        if has is False:
            return Diagnosis(Cause.KERNEL_CONFIG, f"DMA_LOGGING_REPORT is EOPNOTSUPP: the kernel is built "
                             f"without {KCONFIG}, so the core's iova_bitmap is a stub and no driver can "
                             "report dirty pages")
        if has is None:
            return Diagnosis(Cause.KERNEL_CONFIG, "DMA_LOGGING_REPORT is EOPNOTSUPP, the errno of the "
                             f"core's iova_bitmap stub in a kernel without {KCONFIG} (kernel config "
                             "not available to confirm)")
        return Diagnosis(Cause.DRIVER, f"DMA_LOGGING_REPORT is EOPNOTSUPP although the kernel has "
                         f"{KCONFIG}: the driver's log_read_and_clear refuses it")
    if _CONSUMER.search(text):
        return Diagnosis(Cause.CONSUMER, "QEMU refused its own configuration")
    if attempt.stage == "harness" or attempt.stage.endswith("-start") and not text.strip():
        return Diagnosis(Cause.LAB, "the nested VM or the harness failed before the device was involved")
    if attempt.error.startswith(NOT_CONVERGED):
        fallback = QEMU_FALLBACK_STOP_COPY in attempt.stopcopy_sizes
        return Diagnosis(Cause.DRIVER, "QEMU's pre-copy never reached switch-over: "
                         + ("in its exact pending-size queries QEMU counted 100 GiB for the device, its "
                            "fallback when MIG_DATA_SIZE fails (it reports no error)" if fallback else
                            "the device's answers to QEMU's pending-size queries kept the pending size "
                            "above the threshold"))
    if attempt.stage == "compare":
        return Diagnosis(Cause.DRIVER, "QEMU migrated, but the device state did not arrive: the driver "
                         "lost it in save or resume")
    if attempt.stage == "bios":
        return Diagnosis(Cause.LAB, "the nested VM's firmware did not bring the device up")
    if _DMA_START.search(text) or attempt.stage in _DEVICE_STAGES or "vfio" in text.lower():
        return Diagnosis(Cause.DRIVER, f"the device failed QEMU's {attempt.stage} step")
    return Diagnosis(Cause.LAB, f"the {attempt.stage or 'unknown'} step failed outside the device")


_OUTCOME = {Cause.DRIVER: Outcome.FAIL, Cause.KERNEL_CONFIG: Outcome.KNOWN_ISSUE,
            Cause.CONSUMER: Outcome.INFRA_ERROR, Cause.LAB: Outcome.INFRA_ERROR}


def consumer_test_id(kind: str, profile: str, how: str = "") -> str:
    """Stable test id, e.g. consumer_qemu_migrate[mtty:default]."""
    return f"consumer_qemu_{kind}[{profile}{':' + how if how else ''}]"


@dataclasses.dataclass(frozen=True)
class ProfileVerdict:
    """Everything the lane concludes for one profile."""

    profile: str
    records: tuple[TestRecord, ...]
    summary: str            # one line for the console and the report
    cause: Cause = Cause.NONE

    def __post_init__(self):
        """Each record names its profile and the rules it checks (the lane checks one rule each)."""
        object.__setattr__(self, "records", tuple(
            dataclasses.replace(r, profile=r.profile or self.profile,
                                rules=r.rules or ((r.rule,) if r.rule else ())) for r in self.records))


def _attempt_record(profile: str, attempt: Attempt, diag: Diagnosis | None, qemu: str) -> TestRecord:
    seconds = attempt.seconds.get("total", 0.0)
    tid = consumer_test_id("migrate", profile, attempt.how)
    if attempt.ok:
        msg = (f"{qemu}: migrated ({attempt.how}); scratch register {attempt.written:#04x} arrived "
               f"on the destination" + "".join(f"; QEMU {w}" for w in attempt.warnings)
               + (f"; {exact_note(attempt)}" if exact_note(attempt) else ""))
        return TestRecord(tid, tid, Outcome.PASS, seconds, msg, RULE_MIGRATION.id)
    assert diag is not None
    msg = (f"{qemu} ({attempt.how}) failed at {attempt.stage}: {attempt.error} "
           f"-- cause: {diag.cause.value}: {diag.why}")
    link = IOVA_BITMAP_LINK if diag.cause is Cause.KERNEL_CONFIG else ""
    return TestRecord(tid, tid, _OUTCOME[diag.cause], seconds, msg, RULE_MIGRATION.id, link)


def exact_note(attempt: Attempt) -> str:
    """What QEMU's exact pending-size queries saw in `attempt` ('' when not traced)."""
    if attempt.exact_queries is None:
        return ""
    if not attempt.exact_queries:
        return ("QEMU switched over on its estimate alone: no exact pending-size query (MIG_DATA_SIZE "
                "was not asked)")
    sizes = ", ".join(f"{s}" + (" (QEMU's 100 GiB fallback: MIG_DATA_SIZE failed)"
                                if s == QEMU_FALLBACK_STOP_COPY else "") for s in attempt.stopcopy_sizes)
    return f"{attempt.exact_queries} exact pending-size queries, stop-copy size {sizes}"


def converges_record(profile: str, attempt: Attempt, qemu: str) -> TestRecord | None:
    """The consumer.qemu-converges record of the attempt that reached pre-copy (None otherwise):
    pass when QEMU completed after asking the device's exact pending size, fail when it was still in
    pre-copy at the deadline, not determined (skipped) when it switched over without asking; None
    when the attempt was not traced."""
    tid = f"consumer_qemu_converges[{profile}:{attempt.how}]"
    note = exact_note(attempt)
    if attempt.exact_queries is None:
        return None                     # not traced (a guest of an older harness)
    # the migration completed when the attempt did, or when only a check after it failed (the
    # destination's register compared): convergence is decided either way
    switched = attempt.ok or attempt.stage in AFTER_SWITCH_OVER
    if switched and attempt.exact_queries:
        return TestRecord(tid, tid, Outcome.PASS, 0.0, f"{qemu} converged and switched over ({note})", CONVERGES)
    if attempt.error.startswith(NOT_CONVERGED):
        return TestRecord(tid, tid, Outcome.FAIL, 0.0, f"{qemu}: {attempt.error}; {note} -- cause: driver",
                          CONVERGES)
    if switched:
        return TestRecord(tid, tid, Outcome.SKIPPED, 0.0, f"not determined: {note}", CONVERGES)
    return None


def _dma_record(profile: str, declared: bool, default: Attempt, diag: Diagnosis | None,
                fallback: Attempt | None) -> TestRecord:
    tid = consumer_test_id("dma_logging", profile)
    rule = RULE_DMA_LOGGING.id
    if not declared:
        return TestRecord(tid, tid, Outcome.NOT_SUPPORTED, 0.0, "not-supported: the profile declares no "
                          "DMA logging; QEMU tracks dirty pages without the device", rule)
    if default.ok:
        return TestRecord(tid, tid, Outcome.PASS, 0.0, "DMA logging: declared, and QEMU migrated with "
                          "device dirty page tracking (its default)", rule)
    assert diag is not None
    rescued = fallback is not None and fallback.ok
    need = f"QEMU needs {WORKAROUND_OPTION}" + ("" if rescued else f" (and still failed: {fallback.error})"
                                                if fallback else "")
    if diag.cause is Cause.KERNEL_CONFIG and _DMA_REPORT.search(default.error):
        return TestRecord(tid, tid, Outcome.KNOWN_ISSUE, 0.0,
                          f"DMA logging: declared, but REPORT is EOPNOTSUPP on this kernel ({KCONFIG} "
                          f"not set): {need}", rule, IOVA_BITMAP_LINK)
    if diag.cause is Cause.DRIVER and (_DMA_REPORT.search(default.error) or _DMA_START.search(default.error)):
        return TestRecord(tid, tid, Outcome.FAIL, 0.0, f"DMA logging: declared, but QEMU's use of it "
                          f"failed: {default.error}: {need}", rule)
    return TestRecord(tid, tid, Outcome.SKIPPED, 0.0, f"not determined: QEMU's default run failed before "
                      f"dirty tracking ({default.stage}: {default.error})", rule)


def judge(profile: str, dma_logging: bool, entry: dict[str, Any], config: dict[str, str] | None,
          qemu: str) -> ProfileVerdict:
    """The records and the summary line of one profile from its guest entry."""
    attempts = [Attempt.from_json(a) for a in entry.get("attempts", [])]
    if not attempts:
        tid = consumer_test_id("migrate", profile, "default")
        rec = TestRecord(tid, tid, Outcome.INFRA_ERROR, 0.0, "the guest recorded no attempt", RULE_MIGRATION.id)
        return ProfileVerdict(profile, (rec,), f"{profile}: QEMU migration not run (infra-error)", Cause.LAB)
    default, rest = attempts[0], attempts[1:]
    fallback = rest[0] if rest else None
    diag = None if default.ok else diagnose(default, config)
    records = [_attempt_record(profile, default, diag, qemu)]
    if fallback is not None:
        records.append(_attempt_record(profile, fallback,
                                       None if fallback.ok else diagnose(fallback, config), qemu))
    records.append(_dma_record(profile, dma_logging, default, diag, fallback))
    converged = converges_record(profile, attempts[-1], qemu)
    if converged is not None:
        records.append(converged)
    if default.ok:
        summary = f"{profile}: QEMU migrates it with default options (register arrived)"
    else:
        tail = ""
        if fallback is not None and fallback.ok:
            tail = f"; works with {fallback.how}"
        elif fallback is not None:
            tail = (f"; {fallback.how} fails too ({fallback.stage}: {fallback.error}) "
                    f"[cause: {diagnose(fallback, config).cause.value}]")
        summary = (f"{profile}: QEMU cannot migrate it with default options: {_headline(default.error)} "
                   f"[cause: {diag.cause.value}]{tail}")
    return ProfileVerdict(profile, tuple(records), summary, diag.cause if diag else Cause.NONE)


def _headline(error: str) -> str:
    """The most telling part of QEMU's error text: a DMA logging line if there is one, else the first."""
    parts = [p.strip() for p in error.split(";") if p.strip()]
    for part in parts:
        if _DMA_REPORT.search(part) or _DMA_START.search(part):
            return f"{parts[0]} ({part})" if part != parts[0] else part
    return parts[0] if parts else "(no error text)"


#: QEMU 10.0 says "<dev>: VFIO migration is not supported in kernel" when the device offers no
#: VFIO_DEVICE_FEATURE_MIGRATION, and names a migration blocker when migration is blocked.
_BLOCKED = re.compile(r"migration is not supported|migration blocker|doesn't support migration|"
                      r"does not support migration|migration (is )?(blocked|disabled)", re.I)


def judge_without_migration(profile: str, entry: dict[str, Any], qemu: str) -> ProfileVerdict:
    """A device without the migration uAPI (vfio-pci, no variant driver) that QEMU was asked to migrate.

    QEMU refusing with a migration blocker is the expected answer: not-supported, with QEMU's reason.
    """
    attempts = [Attempt.from_json(a) for a in entry.get("attempts", [])]
    tid = consumer_test_id("migrate", profile, "default")
    if not attempts:
        rec = TestRecord(tid, tid, Outcome.INFRA_ERROR, 0.0, "the guest recorded no attempt", RULE_MIGRATION.id)
        return ProfileVerdict(profile, (rec,), f"{profile}: QEMU migration not run (infra-error)", Cause.LAB)
    attempt = attempts[0]
    seconds = attempt.seconds.get("total", 0.0)
    if attempt.ok:
        rec = TestRecord(tid, tid, Outcome.PASS, seconds, f"{qemu} migrated a VM with this vfio-pci device",
                         RULE_MIGRATION.id)
        return ProfileVerdict(profile, (rec,), f"{profile}: QEMU migrated a VM with it")
    if _BLOCKED.search(attempt.error):
        why = (f"vfio-pci without a migration-capable variant driver offers no "
               f"VFIO_DEVICE_FEATURE_MIGRATION, and {qemu} refuses to migrate ({attempt.stage}): "
               f"{attempt.error}")
        rec = TestRecord(tid, tid, Outcome.NOT_SUPPORTED, seconds, f"not-supported: {why}", RULE_MIGRATION.id)
        return ProfileVerdict(profile, (rec,), f"{profile}: not migratable by QEMU: {why}")
    rec = TestRecord(tid, tid, Outcome.INFRA_ERROR, seconds, f"{qemu} did not get to a migration answer "
                     f"({attempt.stage}): {attempt.error}", RULE_MIGRATION.id)
    return ProfileVerdict(profile, (rec,), f"{profile}: QEMU probe failed: {attempt.error}", Cause.LAB)


def not_migratable(profile: str, reason: str) -> ProfileVerdict:
    """A lab profile without migration (vfio-pci, no variant driver): not-supported, with the reason."""
    tid = consumer_test_id("migrate", profile, "default")
    rec = TestRecord(tid, tid, Outcome.NOT_SUPPORTED, 0.0, f"not-supported: {reason}", RULE_MIGRATION.id)
    return ProfileVerdict(profile, (rec,), f"{profile}: not migratable by QEMU: {reason}")


def suites_phrase(run_id: int, counts: dict[str, int]) -> str:
    """`conformant (run #7: 300 pass, 12 not-supported)` or `not conformant (...)` from a run's counts."""
    bad = counts.get(Outcome.FAIL.value, 0) + counts.get(Outcome.INFRA_ERROR.value, 0)
    listed = ", ".join(f"{n} {o}" for o, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    return f"{'not conformant' if bad else 'conformant'} (run #{run_id}: {listed or 'no results'})"


def finding(verdict: ProfileVerdict, suites: tuple[int, dict[str, int]] | None) -> str | None:
    """The report line for a device the suites call conformant that QEMU cannot migrate by default.

    None when QEMU migrates it, when migration is not supported, or when the suites did not call it
    conformant (then the suites' own failures are the finding).
    """
    default = verdict.records[0]
    if default.outcome in (Outcome.PASS, Outcome.NOT_SUPPORTED) or verdict.cause is Cause.LAB:
        return None
    if suites is None:
        return (f"FINDING: QEMU cannot migrate {verdict.profile} with default options on this host "
                f"[cause: {verdict.cause.value}] (no suites run of {verdict.profile} in the store to compare)")
    phrase = suites_phrase(*suites)
    if not phrase.startswith("conformant"):
        return None
    return (f"FINDING: the suites call {verdict.profile} {phrase}, but QEMU cannot migrate it with "
            f"default options on this host [cause: {verdict.cause.value}]")

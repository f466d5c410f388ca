"""Build mtty.ko and its flag-set / broken variants out of tree, each as its own module.

Variants are derived from the upstream sample at build time by checked text edits;
each gets its own module, class, parent and mdev driver name so several load at once.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .build_env import make_argv
from .errors import LabError
from .lockfile import locked
from .packages import KernelTree
from .proc import run

# Migration flag bits (linux/vfio.h).
STOP_COPY, P2P, PRE_COPY = 1, 2, 4
_FLAG_NAMES = {STOP_COPY: "VFIO_MIGRATION_STOP_COPY", P2P: "VFIO_MIGRATION_P2P",
               PRE_COPY: "VFIO_MIGRATION_PRE_COPY"}

# Anchors in samples/vfio-mdev/mtty.c (6.12). Every edit must match exactly once.
_STOCK_FLAGS = ("vdev->migration_flags = VFIO_MIGRATION_STOP_COPY |\n"
                "\t\t\t\tVFIO_MIGRATION_P2P |\n\t\t\t\tVFIO_MIGRATION_PRE_COPY;")
_STEP_ENTRY = "\tdev_dbg(mdev_state->vdev.dev, \"%s: %d -> %d\\n\", __func__, cur, new);\n"
_RUN_STOP_ARCS = ("\tif ((cur == VFIO_DEVICE_STATE_RUNNING && new == VFIO_DEVICE_STATE_STOP) ||\n"
                  "\t    (cur == VFIO_DEVICE_STATE_STOP && new == VFIO_DEVICE_STATE_RUNNING))\n"
                  "\t\treturn NULL;\t/* vfio-conform lab: arc needed without P2P */\n")
# Without P2P, PRE_COPY -> STOP_COPY does what PRE_COPY_P2P -> STOP_COPY does in the sample.
_PRE_COPY_TO_STOP_COPY = ("\tif (cur == VFIO_DEVICE_STATE_PRE_COPY && new == VFIO_DEVICE_STATE_STOP_COPY)\n"
                          "\t\tcur = VFIO_DEVICE_STATE_PRE_COPY_P2P;\t/* vfio-conform lab */\n")
_SET_STATE_LOCK = ("\tdev_dbg(vdev->dev, \"%s -> %d\\n\", __func__, new_state);\n\n"
                   "\tmutex_lock(&mdev_state->state_mutex);\n")
_SET_STATE_UNLOCK = "\tmtty_state_mutex_unlock(mdev_state);\n\treturn ret;\n}\n\nstatic int mtty_get_state("
_LOAD_PORTS = ("\tfor (i = 0; i < mdev_state->nr_ports; i++)\n\t\tmemcpy(&mdev_state->s[i],\n"
               "\t\t       &migf->data.ports[i], sizeof(struct serial_port));\n")
#: The mtty_warn variant's WARN: on this arc of mtty_step_state, with this message.
WARN_ARC = ("PRE_COPY_P2P", "PRE_COPY")
WARN_ARC_MESSAGE = "mtty_warn: injected warning on PRE_COPY_P2P -> PRE_COPY"
_WARN_ON_ARC = (f"\tWARN(cur == VFIO_DEVICE_STATE_{WARN_ARC[0]} && new == VFIO_DEVICE_STATE_{WARN_ARC[1]},\n"
                f"\t     \"{WARN_ARC_MESSAGE}\\n\");\t/* injected bug */\n")
#: The mtty_oops variant's NULL dereference: on this arc of mtty_step_state it writes through the
#: resuming file pointer, which is NULL outside RESUMING (a stale-pointer bug): the kernel oopses in
#: mtty_set_state (mtty_step_state is inlined there), and the lab's oops=panic kills the guest.
OOPS_ARC = ("PRE_COPY_P2P", "PRE_COPY")
_OOPS_ON_ARC = (f"\tif (cur == VFIO_DEVICE_STATE_{OOPS_ARC[0]} && new == VFIO_DEVICE_STATE_{OOPS_ARC[1]})\n"
                "\t\tREAD_ONCE(mdev_state->resuming_migf)->disabled = true;\t/* injected bug */\n")
#: The mtty_noinfo variant: VFIO_MIG_GET_PRECOPY_INFO on the saving fd fails (QEMU asks it at save
#: setup and in every exact pending-size query of pre-copy, and counts 0 initial / 0 dirty bytes).
#: Up to 6.12 mtty checks the command itself; later kernels (7.3) call the core's
#: vfio_check_precopy_ioctl, which returns non-zero for any other command or a bad argsz.
_PRECOPY_IOCTL = "\tif (cmd != VFIO_MIG_GET_PRECOPY_INFO)\n\t\treturn -ENOTTY;\n"
_PRECOPY_INFO_FAILS = "\tif (cmd == VFIO_MIG_GET_PRECOPY_INFO)\n\t\treturn -EIO;\t/* injected bug */\n"
_PRECOPY_CORE_CHECK = ("\tret = vfio_check_precopy_ioctl(&mdev_state->vdev, cmd, arg, &info);\n"
                       "\tif (ret)\n\t\treturn ret;\n")
_PRECOPY_CORE_FAILS = "\treturn -EIO;\t/* injected bug */\n"
#: The mtty_nosize variant: MIG_DATA_SIZE fails in PRE_COPY(_P2P) (works in every other state).
_DATA_SIZE = "\t*stop_copy_length = mtty_data_size(mdev_state);\n\treturn 0;\n"
_DATA_SIZE_FAILS = ("\tif (mdev_state->state == VFIO_DEVICE_STATE_PRE_COPY ||\n"
                    "\t    mdev_state->state == VFIO_DEVICE_STATE_PRE_COPY_P2P)\n"
                    "\t\treturn -EIO;\t/* injected bug */\n")
_BROKEN_FOPS = ("static const struct file_operations mtty_lab_bogus_fops = {\n"
                "\t.owner = THIS_MODULE,\n};\n\n")


@dataclass(frozen=True)
class Variant:
    """One buildable mtty module.

    Args:
        name: module, class, parent and mdev driver name (types are `<name>-1`, `<name>-2`).
        flags: VFIO_MIGRATION_* flags the device reports.
        bug: "" for a conformant build, else a short tag of the injected defect.
        description: what the variant does / what a harness must catch.
    """

    name: str
    flags: int
    bug: str = ""
    description: str = ""

    def mdev_type(self, suffix: str = "2") -> str:
        """The mdev type name for this variant, e.g. mtty_sc-2."""
        return f"{self.name}-{suffix}"


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("mtty", STOP_COPY | P2P | PRE_COPY, description="stock sample, flags 7"),
    Variant("mtty_sc", STOP_COPY, description="STOP_COPY only (adds RUNNING<->STOP)"),
    Variant("mtty_p2p", STOP_COPY | P2P, description="STOP_COPY|P2P (flags change only)"),
    Variant("mtty_pc", STOP_COPY | PRE_COPY,
            description="STOP_COPY|PRE_COPY (adds RUNNING<->STOP and PRE_COPY->STOP_COPY)"),
    Variant("mtty_broken", STOP_COPY | P2P | PRE_COPY, bug="fd-on-stop",
            description="flags 7; BUG: SET STOP from STOP_COPY returns a data_fd "
                        "(spec: data_fd -1; the fd has no read/write ops). No kernel warning."),
    Variant("mtty_lossy", STOP_COPY | P2P | PRE_COPY, bug="state-lost",
            description="flags 7; BUG: RESUMING->STOP accepts the stream but loads no port state "
                        "(a migrated UART register does not arrive)"),
    Variant("mtty_warn", STOP_COPY | P2P | PRE_COPY, bug="warn-on-arc",
            description="flags 7; BUG: the arc PRE_COPY_P2P->PRE_COPY works but WARNs "
                        f"({WARN_ARC_MESSAGE!r} in the kernel log): kernel.no-warnings"),
    Variant("mtty_oops", STOP_COPY | P2P | PRE_COPY, bug="oops-on-arc",
            description="flags 7; BUG: the arc PRE_COPY_P2P->PRE_COPY writes through a NULL file "
                        "pointer: a kernel oops in mtty_set_state [mtty_oops], the guest panics "
                        "(oops=panic): the test is a fail under kernel.no-warnings"),
    Variant("mtty_noinfo", STOP_COPY | P2P | PRE_COPY, bug="precopy-info-fails",
            description="flags 7; BUG: VFIO_MIG_GET_PRECOPY_INFO fails with EIO in PRE_COPY "
                        "(precopy.info-works-in-precopy); QEMU swallows it and counts 0 pending bytes"),
    Variant("mtty_nosize", STOP_COPY | P2P | PRE_COPY, bug="data-size-fails-precopy",
            description="flags 7; BUG: MIG_DATA_SIZE fails with EIO in PRE_COPY(_P2P) "
                        "(datasize.any-state); QEMU swallows it and counts 100 GiB pending"),
)}


def _replace_once(text: str, old: str, new: str, what: str) -> str:
    """Replace `old` by `new` exactly once, or raise LabError naming the edit."""
    count = text.count(old)
    if count != 1:
        raise LabError("build", f"mtty.c edit '{what}' expected 1 anchor, found {count}; "
                       "the kernel's samples/vfio-mdev/mtty.c changed: update modbuild.py")
    return text.replace(old, new)


def variant_source(stock: str, variant: Variant) -> str:
    """Return the C source of `variant`, derived from the stock mtty.c text."""
    if variant.name == "mtty" and not variant.bug:
        return stock
    text = stock
    name = variant.name
    text = _replace_once(text, '#define MTTY_CLASS_NAME "mtty"', f'#define MTTY_CLASS_NAME "{name}"', "class")
    text = _replace_once(text, '#define MTTY_NAME       "mtty"', f'#define MTTY_NAME       "{name}"', "name")
    text = _replace_once(text, '\t\t.name = "mtty",\n', f'\t\t.name = "{name}",\n', "driver name")
    flags = " | ".join(_FLAG_NAMES[b] for b in (STOP_COPY, P2P, PRE_COPY) if variant.flags & b)
    text = _replace_once(text, _STOCK_FLAGS, f"vdev->migration_flags = {flags};", "flags")
    extra = ""
    if not variant.flags & P2P:
        extra += _RUN_STOP_ARCS
        if variant.flags & PRE_COPY:
            extra += _PRE_COPY_TO_STOP_COPY
    if extra:
        text = _replace_once(text, _STEP_ENTRY, _STEP_ENTRY + "\n" + extra, "step arcs")
    if variant.bug == "fd-on-stop":
        text = _replace_once(text, "static struct file *mtty_set_state(",
                             _BROKEN_FOPS + "static struct file *mtty_set_state(", "bogus fops")
        text = _replace_once(text, _SET_STATE_LOCK, _SET_STATE_LOCK +
                             "\tenum vfio_device_mig_state lab_start = mdev_state->state;\n", "start")
        text = _replace_once(text, _SET_STATE_UNLOCK,
                             "\tif (!ret && lab_start == VFIO_DEVICE_STATE_STOP_COPY &&\n"
                             "\t    new_state == VFIO_DEVICE_STATE_STOP)\n"
                             "\t\tret = anon_inode_getfile(\"mtty_lab_bogus\", &mtty_lab_bogus_fops,\n"
                             "\t\t\t\t\t NULL, O_RDONLY);\t/* injected bug */\n" + _SET_STATE_UNLOCK,
                             "bug")
    elif variant.bug == "state-lost":
        text = _replace_once(text, _LOAD_PORTS,
                             "\tfor (i = 0; i < mdev_state->nr_ports; i++)\n"
                             "\t\t;\t/* injected bug: the ports' state is not loaded */\n", "bug")
    elif variant.bug == "warn-on-arc":
        text = _replace_once(text, _STEP_ENTRY, _STEP_ENTRY + _WARN_ON_ARC, "bug")
    elif variant.bug == "oops-on-arc":
        text = _replace_once(text, _STEP_ENTRY, _STEP_ENTRY + _OOPS_ON_ARC, "bug")
    elif variant.bug == "precopy-info-fails":
        if _PRECOPY_CORE_CHECK in text:
            text = _replace_once(text, _PRECOPY_CORE_CHECK, _PRECOPY_CORE_CHECK + _PRECOPY_CORE_FAILS, "bug")
        else:
            text = _replace_once(text, _PRECOPY_IOCTL, _PRECOPY_IOCTL + _PRECOPY_INFO_FAILS, "bug")
    elif variant.bug == "data-size-fails-precopy":
        text = _replace_once(text, _DATA_SIZE, _DATA_SIZE_FAILS + _DATA_SIZE, "bug")
    elif variant.bug:
        raise LabError("build", f"unknown bug tag {variant.bug!r} in variant {name}")
    return text


def migration_missing(stock: str, release: str = "") -> str:
    """'' when this mtty.c migrates; else the reason, for not-supported results (mtty gained
    migration in 6.7: earlier samples have no migration_flags and no state machine)."""
    if "migration_flags" in stock:
        return ""
    kernel = f"kernel {release}'s " if release else ""
    return f"{kernel}samples/vfio-mdev/mtty.c has no migration (no migration_flags): mtty loads " \
           "without VFIO_DEVICE_FEATURE_MIGRATION and its flag-set variants cannot be built"


def buildable(stock: str, names: list[str]) -> list[str]:
    """The variants of `names` this mtty.c can give: all of them, or only the stock module when
    it has no migration (every other variant edits the migration code)."""
    return names if not migration_missing(stock) else [n for n in names if n == "mtty"]


def _build_key(stock: str, variants: list[Variant]) -> str:
    """Hash of the inputs, so a changed variant table rebuilds."""
    h = hashlib.sha256(stock.encode())
    for v in variants:
        h.update(variant_source(stock, v).encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:16]


def build_modules(tree: KernelTree, names: list[str] | None = None) -> dict[str, Path]:
    """Build the named variants (default: all) and return {name: path of .ko}."""
    stock = tree.mtty_source.read_text()
    variants = [VARIANTS[n] for n in buildable(stock, names or list(VARIANTS))]
    key = _build_key(stock, variants)
    out = tree.root / "modules" / key
    result = {v.name: out / f"{v.name}.ko" for v in variants}
    if (out / "build.ready").exists():
        return result
    with locked(tree.root / "modules.lock"):
        if (out / "build.ready").exists():
            return result
        out.mkdir(parents=True, exist_ok=True)
        for v in variants:
            (out / f"{v.name}.c").write_text(variant_source(stock, v))
        (out / "Makefile").write_text("obj-m := " + " ".join(f"{v.name}.o" for v in variants) + "\n")
        env = dict(os.environ, LC_ALL="C")
        args = ["-C", str(tree.headers_dir), f"M={out}", f"-j{os.cpu_count() or 2}",
                "CONFIG_DEBUG_INFO_BTF_MODULES=", "modules"]   # no BTF: pahole not needed
        # the kernel's own compiler: on the host, or in a build chroot (qemu_lab/build_env.py)
        run(make_argv(tree, args, tree.root.parent), kind="build", env=env)
        for v in variants:
            if not result[v.name].exists():
                raise LabError("build", f"{result[v.name]} was not produced; see the make output")
        (out / "build.ready").write_text(key + "\n")
    return result


def srcversion(ko: Path) -> str:
    """The module's srcversion as modinfo reports it (matches /sys/module/<name>/srcversion)."""
    return run(["modinfo", "-F", "srcversion", ko], kind="build").strip()

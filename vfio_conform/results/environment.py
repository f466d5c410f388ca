"""What a run ran on: kernel, driver module, firmware, PCI identity, IOMMU mode, harness and profile.

One `Environment` per run (a profile's devices share the kernel; each device has its own driver,
firmware and identity). It is stored with the run (the `environment` column of `runs`, as JSON of
these dataclasses), written as JUnit suite properties and Allure's environment widget, and compared
by `diff`. A value the host does not expose is the text NOT_EXPOSED, never left out silently.
"""
from __future__ import annotations

import dataclasses
import json

#: A field the driver or host does not make readable (e.g. no firmware version in sysfs).
NOT_EXPOSED = "not exposed"


@dataclasses.dataclass(frozen=True)
class DeviceEnvironment:
    """One device of a run, as the backend that opens it describes it.

    Args:
        device: the device id as given (BDF, mdev UUID, sim instance).
        driver: the driver the device is bound to (sysfs `driver` link).
        module: the kernel module providing the driver (for an mdev: the parent's driver module).
        version: /sys/module/<module>/version (NOT_EXPOSED when the module declares none).
        srcversion: /sys/module/<module>/srcversion.
        firmware: the device's firmware version where the driver exposes one.
        pci_identity: `lspci -vv -s BDF` text, else vendor/device/subsystem/class from sysfs.
        iommu_mode: how the device is opened: "type1 container", "no-IOMMU" or "iommufd cdev".
    """

    device: str
    driver: str
    module: str
    version: str
    srcversion: str
    firmware: str
    pci_identity: str
    iommu_mode: str

    @classmethod
    def uniform(cls, device: str, value: str) -> "DeviceEnvironment":
        """Every field `value` (a backend without host devices, e.g. 'sim')."""
        return cls(device, *([value] * (len(dataclasses.fields(cls)) - 1)))


@dataclasses.dataclass(frozen=True)
class Environment:
    """The environment of one run (one profile on its devices)."""

    kernel_release: str
    kernel_cmdline: str
    harness_version: str
    profile_hash: str
    backend: str
    devices: tuple[DeviceEnvironment, ...] = ()
    #: The run's memory and stream throughput, JSON (plugin/perf.py), set when the run ends; not a
    #: property (it differs every run, `diff` does not compare it); "" until then.
    performance: str = ""
    #: the harness build (vfio_conform.base.build: version, git commit, suites/rules hash; '' in older stores)
    harness_build: str = ""
    #: the kernel's configuration: 'sha256:<12 hex> <file>; CONFIG_VFIO=m ...' (the VFIO/IOMMU
    #: options); NOT_EXPOSED when neither /boot/config-<release> nor /proc/config.gz is readable
    kernel_config: str = ""

    @property
    def firmware(self) -> str:
        """The devices' firmware versions, one per distinct value (the runs table's column)."""
        return ",".join(dict.fromkeys(d.firmware for d in self.devices))

    def properties(self) -> list[tuple[str, str]]:
        """Flat (name, value) pairs: JUnit suite properties, Allure environment, diff keys."""
        out = [("kernel.release", self.kernel_release), ("kernel.cmdline", self.kernel_cmdline),
               ("harness.version", self.harness_version), ("harness.build", self.harness_build),
               ("kernel.config", self.kernel_config), ("profile.hash", self.profile_hash),
               ("backend", self.backend), ("devices", ",".join(d.device for d in self.devices))]
        for i, dev in enumerate(self.devices):
            for field in dataclasses.fields(DeviceEnvironment):
                out.append((f"device.{i}.{field.name}", getattr(dev, field.name)))
        return out

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Environment":
        data = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        dev_names = {f.name for f in dataclasses.fields(DeviceEnvironment)}
        kw = {k: v for k, v in data.items() if k in names}
        kw["devices"] = tuple(DeviceEnvironment(**{k: str(d.get(k, "")) for k in dev_names})
                              for d in data.get("devices") or ())
        for name in names - {"devices"}:
            kw[name] = str(kw.get(name, ""))
        return cls(**kw)


def of_run(run: dict | None) -> Environment | None:
    """The environment stored with a runs row (None: an older store, or a run that recorded none)."""
    text = (run or {}).get("environment")
    if not text:
        return None
    try:
        return Environment.from_json(text)
    except (ValueError, TypeError, AttributeError):
        return None


#: Properties `diff` does not report here: the device ids (runs are paired by profile, and a lab's
#: or another host's devices have other ids by nature), and the harness build (`diff` says
#: "harness changed" on a line of its own, from the runs' harness_build column).
_NOT_COMPARED = ("devices", "harness.build")


def changes(old: Environment | None, new: Environment | None) -> list[str]:
    """'name: old -> new' for each environment property that differs (devices paired by position:
    source with source, destination with destination). Nothing when either side has none."""
    if old is None or new is None:
        return []
    before, after = dict(old.properties()), dict(new.properties())
    out = []
    for name in dict.fromkeys([*before, *after]):
        if name in _NOT_COMPARED or name.endswith(".device"):
            continue
        a, b = before.get(name), after.get(name)
        if a != b:
            out.append(f"{name}: {_short(a)} -> {_short(b)}")
    return out


def _short(value: str | None) -> str:
    if value is None:
        return "(absent)"
    line = value.splitlines()[0] if value else "''"
    return line[:120] + (" ..." if len(value) > len(line) or len(line) > 120 else "")

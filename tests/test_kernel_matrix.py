"""Kernel matrix, host side and without network: naming a Debian kernel (version or alias), the
private apt configuration, the packages each layout needs, and the bad-input cases (unknown
kernel, missing headers/source, failed download, too little disk)."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from vfio_conform.qemu_lab import archive, kernels
from vfio_conform.qemu_lab.archive import PackageInfo, PrivateApt, parse_records
from vfio_conform.qemu_lab.errors import LabError
from vfio_conform.qemu_lab.kernels import IncompleteKernel, UnknownKernel

ROOT = Path(__file__).resolve().parents[1]
MiB = 2**20

#: A small archive: 6.1 (per-series kbuild), 6.12 in bookworm and trixie, 6.18 without headers
#: (as trixie-backports has it once superseded) and 7.3 in the split layout.
ARCHIVE: dict[str, list[tuple[str, int]]] = {
    "linux-image-6.1.0-57-amd64-unsigned": [("6.1.192-3", 70)],
    "linux-image-6.1.0-57-amd64": [("6.1.192-3", 70)],
    "linux-headers-6.1.0-57-amd64": [("6.1.192-3", 2)],
    "linux-headers-6.1.0-57-common": [("6.1.192-3", 10)],
    "linux-kbuild-6.1": [("6.1.192-3", 2)],
    "linux-source-6.1": [("6.1.192-3", 139)],
    "linux-image-6.12.117+deb12-amd64-unsigned": [("6.12.117-1~deb12u1", 100)],
    "linux-image-6.12.117+deb13-amd64-unsigned": [("6.12.117-1", 100)],
    "linux-headers-6.12.117+deb12-amd64": [("6.12.117-1~deb12u1", 2)],
    "linux-headers-6.12.117+deb12-common": [("6.12.117-1~deb12u1", 10)],
    "linux-kbuild-6.12.117+deb12": [("6.12.117-1~deb12u1", 2)],
    "linux-source-6.12": [("6.12.117-1~deb12u1", 150), ("6.12.117-1", 150)],
    "linux-image-6.18.15+deb13-amd64": [("6.18.15-1~bpo13+1", 160)],
    "linux-binary-7.3.4+deb13-amd64": [("7.3.4-1~bpo13+1", 14)],
    "linux-image-7.3.4+deb13-amd64": [("7.3.4-1~bpo13+1", 0)],
    "linux-modules-7.3.4+deb13-amd64": [("7.3.4-1~bpo13+1", 106)],
    "linux-base-7.3.4+deb13-amd64": [("7.3.4-1~bpo13+1", 1)],
    "linux-headers-7.3.4+deb13-amd64": [("7.3.4-1~bpo13+1", 2)],
    "linux-headers-7.3.4+deb13-common": [("7.3.4-1~bpo13+1", 11)],
    "linux-kbuild-7.3.4+deb13": [("7.3.4-1~bpo13+1", 1)],
    "linux-source-7.3": [("7.3.4-1~bpo13+1", 160)],
    "linux-doc": [("7.3.4-1~bpo13+1", 1)],
}


class FakeApt(PrivateApt):
    """PrivateApt answering from ARCHIVE instead of running apt (records every command)."""

    def __init__(self, root: Path, packages=None):
        super().__init__(root)
        self.packages = ARCHIVE if packages is None else packages
        self.calls: list[list[str]] = []

    def _run(self, tool, args, cwd=None):
        self.calls.append([tool, *args])
        if args == ["pkgnames"]:
            return "\n".join(self.packages) + "\n"
        if args[0] == "show":
            unknown = [n for n in args[1:] if n not in self.packages]
            if unknown:
                raise LabError("download", f"E: No packages found: {unknown[0]}")
            return "".join(f"Package: {n}\nVersion: {v}\nInstalled-Size: {s * 1024}\nSize: {s * MiB}\n"
                           "Description: x\n continued\n\n"
                           for n in args[1:] for v, s in self.packages[n])
        if args[0] == "download":
            name, version = args[1].split("=")
            (cwd / f"{name}_{version}_amd64.deb").write_bytes(b"deb")
            return ""
        return ""


@pytest.fixture
def apt(tmp_path):
    return FakeApt(tmp_path / "apt")


def test_the_private_configuration_replaces_every_host_apt_directory(tmp_path):
    apt = PrivateApt(tmp_path / "apt")
    apt.setup()
    opts = apt.options()
    values = dict(o.split("=", 1) for o in opts[1::2])
    for key in ("Dir::Etc::SourceList", "Dir::Etc::SourceParts", "Dir::Etc::Preferences",
                "Dir::Etc::PreferencesParts", "Dir::Etc::TrustedParts", "Dir::State::Lists",
                "Dir::State::status", "Dir::Cache"):
        assert values[key].startswith(str(tmp_path / "apt")), key
    lines = apt.sources_list.read_text().splitlines()
    assert [line.split()[-2] for line in lines] == ["bookworm", "bookworm-security", "trixie",
                                                    "trixie-backports"]
    assert all(f"signed-by={archive.KEYRING}" in line for line in lines)


def test_a_missing_keyring_is_named(tmp_path):
    apt = PrivateApt(tmp_path / "apt", keyring=tmp_path / "none.gpg")
    with pytest.raises(LabError, match="debian-archive-keyring"):
        apt.setup()


def test_records_parse_and_the_newest_version_wins(apt):
    assert parse_records("Package: a\nVersion: 1\nDescription: d\n more\n\nPackage: b\nVersion: 2\n") \
        == [{"Package": "a", "Version": "1", "Description": "d"}, {"Package": "b", "Version": "2"}]
    assert apt.show("linux-source-6.12").version == "6.12.117-1"     # dpkg order: ~ sorts first
    assert apt.show("linux-source-6.12", "6.12.117-1~deb12u1").version == "6.12.117-1~deb12u1"
    assert apt.show("linux-source-6.12", "9.9") is None
    assert apt.show("linux-nothing") is None


def test_layouts_prefer_the_split_binary_then_the_unsigned_image():
    images = kernels.image_names(list(ARCHIVE))
    assert images["7.3.4+deb13"] == ("linux-binary-7.3.4+deb13-amd64", "split")
    assert images["6.1.0-57"] == ("linux-image-6.1.0-57-amd64-unsigned", "image")
    assert images["6.18.15+deb13"] == ("linux-image-6.18.15+deb13-amd64", "image")
    assert "linux-doc" not in str(images)


@pytest.mark.parametrize("name, kver", [
    ("latest", "7.3.4+deb13-amd64"), ("7.3", "7.3.4+deb13-amd64"), ("7.3.4", "7.3.4+deb13-amd64"),
    ("lts", "6.18.15+deb13-amd64"), ("6.1", "6.1.0-57-amd64"), ("6.1.192", "6.1.0-57-amd64"),
    ("6.1.0-57", "6.1.0-57-amd64"), ("6.1.0-57-amd64", "6.1.0-57-amd64"),
    ("6.12", "6.12.117+deb12-amd64"), ("6.12.117+deb13", "6.12.117+deb13-amd64"),
])
def test_a_version_or_alias_names_the_newest_build_it_matches(apt, name, kver):
    assert kernels.pick(kernels.available(apt), name, "+deb12").kver == kver


def test_a_tie_goes_to_the_hosts_debian_release(apt):
    assert kernels.pick(kernels.available(apt), "6.12", "+deb13").abi == "6.12.117+deb13"


def test_the_kernel_list_is_kept_until_the_lists_change(apt):
    apt.setup()
    (apt.lists / "updated").touch()
    first = kernels.available(apt)
    count = len(apt.calls)
    assert kernels.available(apt) == first and len(apt.calls) == count


@pytest.mark.parametrize("name", ["5.10", "6.13", "7.3.9", "newest", "6.12.117+deb11"])
def test_an_unknown_kernel_lists_what_the_archives_carry(apt, name):
    with pytest.raises(UnknownKernel) as exc:
        kernels.pick(kernels.available(apt), name)
    text = str(exc.value)
    assert "\n" not in text and repr(name) in text
    assert "6.1 (6.1.192), 6.12 (6.12.117), 6.18 (6.18.15), 7.3 (7.3.4)" in text
    assert "latest, lts" in text


def test_split_layout_packages_are_pinned_to_the_image_version(apt):
    spec, infos = kernels.spec_for(apt, kernels.pick(kernels.available(apt), "latest"))
    assert spec.packages == ("linux-binary-7.3.4+deb13-amd64", "linux-modules-7.3.4+deb13-amd64",
                             "linux-base-7.3.4+deb13-amd64", "linux-headers-7.3.4+deb13-amd64",
                             "linux-headers-7.3.4+deb13-common", "linux-kbuild-7.3.4+deb13",
                             "linux-source-7.3")
    assert {i.version for i in infos} == {"7.3.4-1~bpo13+1"} and spec.release == "7.3.4"
    assert spec.image_pkg == "linux-binary-7.3.4+deb13-amd64" and spec.archive == str(apt.root)


def test_61_uses_the_per_series_kbuild(apt):
    spec, _ = kernels.spec_for(apt, kernels.pick(kernels.available(apt), "6.1"))
    assert "linux-kbuild-6.1" in spec.packages and spec.release == "6.1.192"
    assert spec.kver == "6.1.0-57-amd64" and spec.source_series == "6.1"


def test_missing_headers_and_source_are_named_in_one_line(apt):
    with pytest.raises(IncompleteKernel) as exc:
        kernels.spec_for(apt, kernels.pick(kernels.available(apt), "6.18"))
    text = str(exc.value)
    assert "\n" not in text
    for pkg in ("linux-headers-6.18.15+deb13-amd64", "linux-headers-6.18.15+deb13-common",
                "linux-kbuild-6.18.15+deb13", "linux-source-6.18"):
        assert f"{pkg} (= 6.18.15-1~bpo13+1)" in text


def test_a_source_package_only_at_another_version_is_missing(tmp_path):
    packages = dict(ARCHIVE, **{"linux-source-7.3": [("7.3.5-1~bpo13+1", 160)]})
    apt = FakeApt(tmp_path / "apt", packages)
    with pytest.raises(IncompleteKernel, match=r"lack linux-source-7.3 \(= 7.3.4-1~bpo13\+1\)"):
        kernels.spec_for(apt, kernels.pick(kernels.available(apt), "7.3"))


def test_too_little_disk_names_the_space_needed(tmp_path, monkeypatch):
    infos = [PackageInfo("linux-image-x", "1", 100 * MiB, 400 * MiB),
             PackageInfo("linux-source-x", "1", 150 * MiB, 150 * MiB)]
    real = shutil.disk_usage
    monkeypatch.setattr(kernels.shutil, "disk_usage", lambda path: real(path)._replace(free=300 * MiB))
    with pytest.raises(kernels.DiskSpace) as exc:
        kernels.check_disk(infos, tmp_path, "linux-source-x")
    # 100 + 400 + 150 (the source is streamed, not unpacked) + the build margin
    assert str(exc.value) == (f"[download] too little disk for the kernel: {650 + 200} MiB needed "
                              f"in {tmp_path}, 300 MiB free")


def fake_tool(tmp_path, monkeypatch, name, body):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text("#!/bin/sh\n" + body)
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def test_a_failed_download_names_the_apt_command_and_its_output(tmp_path, monkeypatch):
    fake_tool(tmp_path, monkeypatch, "apt-get",
              'echo "E: Failed to fetch http://deb.debian.org/x.deb  404  Not Found" >&2\nexit 100\n')
    apt = PrivateApt(tmp_path / "apt", keyring=Path(sys.executable))
    apt.setup()
    with pytest.raises(LabError) as exc:
        apt.download(PackageInfo("linux-source-7.3", "7.3.4-1~bpo13+1", 1, 1), tmp_path / "debs")
    text = str(exc.value)
    assert "apt-get -o Dir::Etc::SourceList=" in text and "download linux-source-7.3=7.3.4-1~bpo13+1" in text
    assert "404  Not Found" in text and "exit 100" in text


def test_the_download_uses_the_private_configuration_and_is_cached(tmp_path, monkeypatch):
    fake_tool(tmp_path, monkeypatch, "apt-get",
              f'echo "$@" >> {tmp_path}/calls\nname=${{@##* }}\n'
              'touch "${name%%=*}_${name#*=}_amd64.deb"\n')
    apt = PrivateApt(tmp_path / "apt", keyring=Path(sys.executable))
    apt.setup()
    info = PackageInfo("linux-base-7.3.4+deb13-amd64", "7.3.4-1~bpo13+1", 1, 1)
    deb = apt.download(info, tmp_path / "debs")
    assert deb.name == "linux-base-7.3.4+deb13-amd64_7.3.4-1~bpo13+1_amd64.deb"
    assert apt.download(info, tmp_path / "debs") == deb
    calls = (tmp_path / "calls").read_text().splitlines()
    assert len(calls) == 1 and f"Dir::Etc::SourceList={apt.sources_list}" in calls[0]
    assert f"Dir::State::Lists={apt.lists}" in calls[0]


def test_the_cli_refuses_an_unknown_kernel_with_exit_2(tmp_path):
    """`vfio-conform lab run --kernel 5.10` exits 2 with one line listing the archive's kernels."""
    code = ("import sys, pathlib\n"
            "sys.path.insert(0, 'tests')\n"
            "import test_kernel_matrix as t\n"
            "from vfio_conform.qemu_lab import kernels\n"
            "kernels.PrivateApt = lambda root: t.FakeApt(root)\n"
            "from vfio_conform.cli.app import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code, "lab", "run", "--kernel", "5.10",
                           "--reports", str(tmp_path / "reports")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vfio-conform: error: --kernel: unknown kernel '5.10'")
    assert "7.3 (7.3.4)" in lines[0]
    assert not (tmp_path / "reports").exists()


# --------------------------------------------------------------------------- per-kernel mtty

STOCK_612 = "\tvdev->migration_flags = VFIO_MIGRATION_STOP_COPY |\n"     # what 6.7 and later have
STOCK_61 = "static const struct vfio_device_ops mtty_dev_ops = {\n"        # no migration at all


def test_a_mtty_without_migration_builds_only_the_stock_module():
    from vfio_conform.qemu_lab.modbuild import VARIANTS, buildable, migration_missing
    assert migration_missing(STOCK_612) == "" and buildable(STOCK_612, list(VARIANTS)) == list(VARIANTS)
    reason = migration_missing(STOCK_61, "6.1.192")
    assert reason.startswith("kernel 6.1.192's samples/vfio-mdev/mtty.c has no migration")
    assert buildable(STOCK_61, list(VARIANTS)) == ["mtty"]


def test_the_plan_on_a_kernel_without_mtty_migration(tmp_path):
    """The stock profile runs as a copy with protocol none (region suites only); each variant's
    profile is not-supported with the reason; on a kernel whose mtty migrates nothing changes."""
    from vfio_conform.qemu_lab.config import KernelSpec
    from vfio_conform.qemu_lab.kernel_plan import plan
    from vfio_conform.profile import find_profile
    profiles = [find_profile("mtty"), find_profile("mtty-sc"), find_profile("qemu-edu")]
    src = tmp_path / "mtty.c"
    src.write_text(STOCK_61)
    spec = KernelSpec(abi="6.1.0-57", source_series="6.1", version="6.1.192-3")
    got = plan(profiles, spec, src, tmp_path / "derived")
    assert [p.name for p in got.run] == ["mtty", "qemu-edu"]
    assert [(p.name, r.split(":")[0]) for p, r in got.not_supported] == \
        [("mtty-sc", "kernel 6.1.192's samples/vfio-mdev/mtty.c has no migration (no migration_flags)")]
    derived = got.run[0]
    assert derived.protocol == "none" and not derived.flags and "has no migration" in derived.description
    assert profiles[0].features.dma_logging and not derived.features.dma_logging
    assert derived.path == str(tmp_path / "derived" / "mtty.yaml")
    src.write_text(STOCK_612)
    again = plan(profiles, spec, src, tmp_path / "derived2")
    assert again.run == profiles and not again.not_supported


def test_a_not_supported_profile_is_one_stored_result_naming_the_reason(tmp_path):
    from vfio_conform.qemu_lab.config import KernelSpec
    from vfio_conform.qemu_lab.kernel_plan import record_not_supported
    from vfio_conform.profile import find_profile
    from vfio_conform.results import ResultStore
    store = ResultStore(tmp_path / "results.db")
    spec = KernelSpec(abi="6.1.0-57", source_series="6.1", version="6.1.192-3")
    run_id = record_not_supported(store, find_profile("mtty-sc"), spec, "no migration", "s1")
    run = store.run(run_id)
    assert run["kernel"] == "6.1.0-57-amd64" and run["status"] == "finished"
    rows = store.results(run_id)
    assert [(r["outcome"], r["message"]) for r in rows] == [("not-supported", "not-supported: no migration")]
    store.close()


# --------------------------------------------------------------------------- results keyed by kernel

def _store_two_kernels(path: Path):
    """mtty on 6.12 (all pass) and on 7.3 (one arc fails), plus a run on 6.1 (not-supported)."""
    from vfio_conform.report.sample import write_run
    from vfio_conform.results import ResultStore
    store = ResultStore(path)
    arc = "test_arc[mtty:RUNNING->STOP]"
    old = write_run(store, "mtty", {arc: ("pass", "")}, kernel="6.12.117+deb12-amd64")
    new = write_run(store, "mtty", {arc: ("fail", "")}, kernel="7.3.4+deb13-amd64")
    store.set_kernel(new, "7.3.4-1~bpo13+1", "cafe")
    from vfio_conform.qemu_lab.config import KernelSpec
    from vfio_conform.qemu_lab.kernel_plan import record_not_supported
    from vfio_conform.profile import find_profile
    record_not_supported(store, find_profile("mtty-sc"), KernelSpec(abi="6.1.0-57", source_series="6.1"),
                         "no migration", "s61")
    return store, old, new, arc


def test_runs_carry_the_kernel_key_and_the_columns_are_added_to_old_stores(tmp_path):
    import sqlite3
    from vfio_conform.results import ResultStore
    db = tmp_path / "old.db"
    ResultStore(db).close()
    con = sqlite3.connect(db)         # an older store: without the kernel key columns
    con.execute("ALTER TABLE runs DROP COLUMN kernel_package")
    con.execute("ALTER TABLE runs DROP COLUMN kernel_config")
    con.commit()
    con.close()
    store, _, new, _ = _store_two_kernels(db)
    run = store.run(new)
    assert (run["kernel"], run["kernel_package"], run["kernel_config"]) == \
        ("7.3.4+deb13-amd64", "7.3.4-1~bpo13+1", "cafe")
    store.close()
    ResultStore(db).close()           # opening again adds nothing twice


@pytest.mark.parametrize("name, run", [
    ("6.12", True), ("6.12.117", True), ("6.12.117+deb12-amd64", True), ("6.1", False), ("6", True),
    ("6.12.11", False), ("7.3", False)])
def test_a_kernel_names_runs_at_version_boundaries(name, run):
    from vfio_conform.report.kernels import on_kernel
    assert on_kernel({"kernel": "6.12.117+deb12-amd64", "kernel_package": ""}, name) is run
    assert on_kernel({"kernel": "6.1.0-57-amd64", "kernel_package": "6.1.192-3"}, "6.1.192")


def test_diff_kernel_names_each_test_whose_outcome_changed(tmp_path, capsys):
    from vfio_conform.cli.app import main
    store, old, new, arc = _store_two_kernels(tmp_path / "r.db")
    store.close()
    code = main(["diff", "--kernel", "6.12", "7.3", "--store", str(tmp_path / "r.db"), "--no-html"])
    out = capsys.readouterr().out
    assert code == 1                       # a test passing on 6.12 fails on 7.3
    assert arc in out and f"#{old}" in out or str(old) in out
    code = main(["diff", "--kernel", "6.12", "6.12", "--store", str(tmp_path / "r.db"), "--no-html"])
    assert code == 0


def test_diff_kernel_without_a_common_profile_is_a_usage_error(tmp_path, capsys):
    from vfio_conform.cli.app import main
    store, *_ = _store_two_kernels(tmp_path / "r.db")
    store.close()
    assert main(["diff", "--kernel", "6.1", "7.3", "--store", str(tmp_path / "r.db"), "--no-html"]) == 2
    assert "share no profile" in capsys.readouterr().err
    assert main(["diff", "--kernel", "5.10", "7.3", "--store", str(tmp_path / "r.db"), "--no-html"]) == 2
    assert "no run on kernel '5.10'" in capsys.readouterr().err


def test_the_kernel_profile_matrix_shows_each_cells_verdict(tmp_path):
    from vfio_conform.report.kernels import kernel_matrix, render_matrix_text
    store, old, new, _ = _store_two_kernels(tmp_path / "r.db")
    grid = kernel_matrix(store, ["6.1", "6.12", "7.3"])
    store.close()
    assert grid.profiles == ["mtty", "mtty-sc"]
    assert grid.verdicts == {("mtty-sc", "6.1"): "not-supported", ("mtty", "6.12"): "pass",
                             ("mtty", "7.3"): "fail"}
    text = render_matrix_text(grid).splitlines()
    assert text[1].split() == ["mtty", "not", "run", "pass", "fail"]


def _grid_cells(page: str) -> dict[tuple[str, str], str]:
    """{(profile, kernel): verdict} of the report's kernel x profile grid."""
    import re
    grid = page.split('id="kernel-matrix"', 1)[1].split("</table>", 1)[0]
    return {(p, k): v for k, p, v in re.findall(
        r'data-kernel="([^"]+)" data-profile="([^"]+)"><b>([^<]+)</b>', grid)}


def test_the_report_commands_html_has_the_kernel_profile_grid(tmp_path):
    """`vfio-conform report` over runs on several kernels: the grid in the main report, each cell
    the verdict of the profile's newest run on that kernel; one kernel: no grid."""
    from vfio_conform.cli.app import main
    store, old, new, _ = _store_two_kernels(tmp_path / "r.db")
    runs = [r["id"] for r in store.runs()]
    store.close()
    out = tmp_path / "report.html"
    assert main(["report", *map(str, runs), "--store", str(tmp_path / "r.db"), "--out", str(out)]) == 0
    page = out.read_text()
    assert page.index('id="kernel-matrix"') < page.index('class="verdict')      # first on the page
    assert f"(run #{new}, kernel 7.3.4+deb13-amd64)" in page                      # banners say it
    head = page.split('id="kernel-matrix"', 1)[1].split("</thead>", 1)[0]
    assert head.index("6.1.0-57-amd64") < head.index("6.12.117+deb12-amd64") < head.index("7.3.4+deb13")
    assert _grid_cells(page) == {("mtty", "6.12.117+deb12-amd64"): "CONFORMANT",
                                 ("mtty", "7.3.4+deb13-amd64"): "NON-CONFORMANT",
                                 ("mtty-sc", "6.1.0-57-amd64"): "NOT-SUPPORTED"}   # nothing ran
    assert 'title="not-supported: no migration"' in page      # the reason, on hover
    assert "not run" in page.split('id="kernel-matrix"', 1)[1].split("</table>", 1)[0]
    assert main(["report", str(old), "--store", str(tmp_path / "r.db"), "--out", str(out)]) == 0
    assert 'id="kernel-matrix"' not in out.read_text()
    assert main(["report", "--kernel", "6.12", "--kernel", "7.3", "--store", str(tmp_path / "r.db"),
                 "--out", str(out)]) == 0             # each profile's newest run on each kernel
    assert _grid_cells(out.read_text()) == {("mtty", "6.12.117+deb12-amd64"): "CONFORMANT",
                                            ("mtty", "7.3.4+deb13-amd64"): "NON-CONFORMANT"}
    assert main(["report", "--kernel", "5.10", "--store", str(tmp_path / "r.db"), "--out", str(out)]) == 2


def test_the_matrix_leaves_out_a_default_kernel_the_archives_cannot_give_and_refuses_a_named_one(
        tmp_path, monkeypatch):
    from vfio_conform.qemu_lab import matrix
    monkeypatch.setattr(kernels, "PrivateApt", lambda root: FakeApt(root))
    specs, skipped = matrix.resolve_kernels(None, tmp_path)
    assert [s.kver for s in specs] == ["6.1.0-57-amd64", "6.12.117+deb12-amd64", "7.3.4+deb13-amd64"]
    assert list(skipped) == ["6.18"] and "linux-source-6.18" in skipped["6.18"]
    whole = dict(ARCHIVE, **{f"{n}6.18.15+deb13{t}": [("6.18.15-1~bpo13+1", 5)] for n, t in (
        ("linux-headers-", "-amd64"), ("linux-headers-", "-common"), ("linux-kbuild-", ""))},
        **{"linux-source-6.18": [("6.18.15-1~bpo13+1", 150)]})
    monkeypatch.setattr(kernels, "PrivateApt", lambda root: FakeApt(root, whole))
    specs, skipped = matrix.resolve_kernels(None, tmp_path / "whole")   # 6.18 back whole: taken in
    assert [s.release for s in specs] == ["6.1.192", "6.12.117", "6.18.15", "7.3.4"] and not skipped
    monkeypatch.setattr(kernels, "PrivateApt", lambda root: FakeApt(root))
    with pytest.raises(IncompleteKernel):
        matrix.resolve_kernels(["6.12", "6.18"], tmp_path)
    with pytest.raises(UnknownKernel):
        matrix.resolve_kernels(["4.19"], tmp_path)
    specs, _ = matrix.resolve_kernels(["latest", "7.3", "6.1"], tmp_path)     # one boot per kernel
    assert [s.kver for s in specs] == ["7.3.4+deb13-amd64", "6.1.0-57-amd64"]


# --------------------------------------------------------------------------- per-kernel tree and build

def _tree(tmp_path, abi="7.3.4+deb13"):
    from vfio_conform.qemu_lab.config import KernelSpec
    from vfio_conform.qemu_lab.packages import KernelTree
    spec = KernelSpec(abi=abi, source_series=".".join(abi.split(".")[:2]))
    return KernelTree(spec, tmp_path / spec.kver)


def test_the_split_layout_keeps_vmlinuz_and_config_under_usr_lib_modules(tmp_path):
    from vfio_conform.qemu_lab.kernel_plan import kernel_key
    tree = _tree(tmp_path)
    mods = tree.sysroot / "usr" / "lib" / "modules" / tree.spec.kver
    mods.mkdir(parents=True)
    assert tree.vmlinuz == tree.sysroot / "boot" / f"vmlinuz-{tree.spec.kver}"
    (mods / "vmlinuz").write_bytes(b"k")
    (mods / "config").write_text("CONFIG_VFIO=m\n")
    assert tree.vmlinuz == mods / "vmlinuz"
    (tree.root / "kernel.ready").write_text("7.3.4-1~bpo13+1\n")
    import hashlib
    assert kernel_key(tree) == ("7.3.4-1~bpo13+1", hashlib.sha256(b"CONFIG_VFIO=m\n").hexdigest()[:16])


def test_virtio_pci_and_console_are_loaded_in_stage_one_only_where_they_are_modules(tmp_path):
    """6.1 builds both as modules: without virtio_console the guest has no output channels."""
    from vfio_conform.qemu_lab.initramfs import STAGE1_MODULES, stage1_modules
    tree = _tree(tmp_path, "6.1.0-57")
    tree.modules_dir.mkdir(parents=True)
    (tree.modules_dir / "modules.builtin").write_text("kernel/drivers/block/loop.ko\n")
    assert stage1_modules(tree) == ("virtio_pci", "virtio_console", *STAGE1_MODULES)
    (tree.modules_dir / "modules.builtin").write_text("kernel/drivers/virtio/virtio_pci.ko\n"
                                                      "kernel/drivers/char/virtio_console.ko\n")
    assert stage1_modules(tree) == STAGE1_MODULES


def test_a_kernel_built_with_a_compiler_the_host_lacks_builds_in_the_chroot(tmp_path, monkeypatch):
    from vfio_conform.qemu_lab import build_env
    tree = _tree(tmp_path)
    tree.headers_dir.mkdir(parents=True)
    assert build_env.kernel_compiler(tree) == "" and not build_env.needs_chroot(tree)
    assert build_env.make_argv(tree, ["-C", "x", "modules"], tmp_path) == ["make", "-C", "x", "modules"]
    (tree.headers_dir / ".kernelvariables").write_text(
        "CC = $(if $(DEBIAN_KERNEL_USE_CCACHE),$(CCACHE)) $(CROSS_COMPILE)gcc-99\n")
    assert build_env.kernel_compiler(tree) == "gcc-99" and build_env.needs_chroot(tree)
    root = tmp_path / "build-trixie" / "root"
    monkeypatch.setattr(build_env, "prepare_build_chroot", lambda cache_root: root)
    argv = build_env.make_argv(tree, ["-C", "x", "modules"], tmp_path)
    assert argv[1:5] == ["-m", "--propagation", "private", "sh"]     # a private mount namespace
    script = argv[-1]
    assert f"mount --bind {tree.root} {root}{tree.root}" in script       # the tree at its own path
    assert script.endswith(f"exec chroot {root} make -C x modules")


def test_the_matrix_boots_once_per_kernel_prints_its_time_and_writes_the_grid(tmp_path, monkeypatch,
                                                                              capsys):
    """run_lab (the boot) is replaced by one that stores a run on the kernel it is given."""
    from vfio_conform.qemu_lab import matrix
    from vfio_conform.qemu_lab.harness import LabRun
    from vfio_conform.report.sample import write_run
    from vfio_conform.base.constants import STORE_NAME
    from vfio_conform.results import ResultStore
    monkeypatch.setattr(kernels, "PrivateApt", lambda root: FakeApt(root))
    monkeypatch.setattr(matrix, "default_cache_root", lambda: tmp_path / "cache")
    booted = []

    def fake_run_lab(profiles, reports, store, workers, extra, timeout, kernel):
        booted.append(kernel.kver)
        db = ResultStore(reports / STORE_NAME)
        run_id = write_run(db, "mtty", {"test_arc[mtty:RUNNING->STOP]": ("pass", "")}, kernel=kernel.kver)
        db.close()
        return [LabRun("mdev", ["mtty"], 0, reports / "lab" / kernel.kver, run_ids=[run_id])]

    monkeypatch.setattr(matrix, "run_lab", fake_run_lab)
    checked, migrated = [], []
    monkeypatch.setattr(matrix, "uapi_check", lambda spec: checked.append(spec.kver) or 0)
    monkeypatch.setattr(matrix, "consumer_lane",
                        lambda spec, profiles, reports, store, timeout: migrated.append(spec.kver) or 0)
    reports = tmp_path / "reports"
    reports.mkdir()
    result = matrix.run_matrix(None, ["mtty"], reports)
    out = capsys.readouterr().out
    assert booted == ["6.1.0-57-amd64", "6.12.117+deb12-amd64", "7.3.4+deb13-amd64"]   # 6.18 left out
    assert checked == booted and migrated == booted     # the uAPI check and QEMU on every kernel
    assert result.uapi == dict.fromkeys(booted, 0) and result.consumers == dict.fromkeys(booted, 0)
    assert "kernel 6.18 left out: kernel 6.18.15+deb13-amd64: the archives lack" in out
    assert set(result.seconds) == set(booted) and f"kernel {booted[0]} took" in out
    page = (reports / "lab" / "kernel-matrix.html").read_text()     # the main report, grid first
    assert _grid_cells(page) == {("mtty", k): "CONFORMANT" for k in booted}
    assert all(f'id="run-{i}"' in page for r in result.runs for i in r.run_ids)


def test_lab_run_on_a_kernel_without_mtty_migration_boots_the_derived_profile_only(tmp_path, monkeypatch):
    """run_lab's wiring (the boot replaced): the variant is stored not-supported and keyed by the
    kernel, the stock profile boots as its protocol-none copy, the boot's runs are keyed too."""
    from types import SimpleNamespace
    from vfio_conform.base.constants import STORE_NAME
    from vfio_conform.qemu_lab import harness, kernel_plan
    from vfio_conform.qemu_lab.config import KernelSpec
    from vfio_conform.report.sample import write_run
    from vfio_conform.results import ResultStore
    from vfio_conform.qemu_lab.packages import KernelTree
    spec = KernelSpec(abi="6.1.0-57", source_series="6.1", version="6.1.192-3")
    tree = KernelTree(spec, tmp_path / spec.kver)
    (tree.root / "src").mkdir(parents=True)
    tree.mtty_source.write_text(STOCK_61)
    (tree.sysroot / "boot").mkdir(parents=True)
    (tree.sysroot / "boot" / f"config-{spec.kver}").write_text("CONFIG_VFIO=m\n")
    monkeypatch.setattr(kernel_plan, "prepare_kernel", lambda s, cache: tree)
    monkeypatch.setattr(harness, "warm_host_caches", lambda: None)
    sessions = []

    class FakeSession:
        def __init__(self, config):
            self.config = config
            sessions.append(self)

        def prepare(self):
            return SimpleNamespace(tree=tree)

    booted = []

    def fake_boots(session, group, reports, store, workers, extra, timeout):
        booted.append([(p.name, p.protocol, p.path) for p in group])
        db = ResultStore(reports / STORE_NAME)
        run_id = write_run(db, "mtty", kernel=spec.kver)
        db.close()
        return [harness.LabRun("mdev", ["mtty"], 0, reports / "lab" / "x", run_ids=[run_id])]

    monkeypatch.setattr(harness, "LabSession", FakeSession)
    monkeypatch.setattr(harness, "_boots", fake_boots)
    reports = tmp_path / "reports"
    runs = harness.run_lab(["mtty", "mtty-sc"], reports, kernel=spec)
    assert [(r.profiles, r.exit_code) for r in runs] == [(["mtty-sc"], 0), (["mtty"], 0)]
    assert sessions[0].config.kernel == spec and sessions[0].config.modules == ("mtty",)
    [(name, protocol, path)] = booted[0]
    assert (name, protocol) == ("mtty", "none")
    assert path == str(reports / "lab" / "kernel-profiles" / spec.kver / "mtty.yaml")
    db = ResultStore(reports / STORE_NAME)
    for run in runs:
        row = db.run(run.run_ids[0])
        assert (row["kernel"], row["kernel_package"]) == (spec.kver, "6.1.192-3") and row["kernel_config"]
    assert db.results(runs[0].run_ids[0])[0]["outcome"] == "not-supported"
    db.close()


def test_lab_consumers_on_a_kernel_without_mtty_migration_boots_nothing_and_says_why(tmp_path, monkeypatch):
    from vfio_conform.qemu_lab import consumers
    from vfio_conform.qemu_lab.config import KernelSpec
    from vfio_conform.qemu_lab.packages import KernelTree
    spec = KernelSpec(abi="6.1.0-57", source_series="6.1", version="6.1.192-3")
    tree = KernelTree(spec, tmp_path / spec.kver)
    (tree.root / "src").mkdir(parents=True)
    tree.mtty_source.write_text(STOCK_61)
    monkeypatch.setattr(consumers, "prepare_kernel", lambda s, cache: tree)
    monkeypatch.setattr(consumers, "_boot", lambda *a: pytest.fail("no guest may boot"))
    run = consumers.run_consumers(["mtty", "mtty-sc"], tmp_path / "reports", kernel_spec=spec)
    assert sorted(v.profile for v in run.verdicts) == ["mtty", "mtty-sc"]
    for v in run.verdicts:
        assert "kernel 6.1.192's samples/vfio-mdev/mtty.c has no migration" in v.summary + \
            " ".join(r.message for r in v.records)


def test_an_alias_means_the_newest_build_the_archives_carry_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(kernels, "PrivateApt", lambda root: FakeApt(root))
    monkeypatch.setattr(kernels, "host_tag", lambda: "+deb12")
    assert kernels.resolve("lts", tmp_path, update=False)[0].kver == "6.12.117+deb12-amd64"  # not 6.18
    assert kernels.resolve("latest", tmp_path, update=False)[0].kver == "7.3.4+deb13-amd64"
    with pytest.raises(IncompleteKernel):
        kernels.resolve("6.18", tmp_path, update=False)          # a version stays strict
    gone = {k: v for k, v in ARCHIVE.items() if not k.startswith(("linux-source", "linux-kbuild"))}
    monkeypatch.setattr(kernels, "PrivateApt", lambda root: FakeApt(root, gone))
    with pytest.raises(IncompleteKernel, match="7.3.4"):         # none whole: the newest is named
        kernels.resolve("latest", tmp_path / "2", update=False)


def _fake_matrix(tmp_path, monkeypatch):
    """`lab matrix` with the archive faked and each boot replaced by one that stores a mtty run on
    the kernel it is given (an arc failing on 7.3)."""
    from vfio_conform.qemu_lab import matrix
    from vfio_conform.qemu_lab.harness import LabRun
    from vfio_conform.report.sample import write_run
    from vfio_conform.base.constants import STORE_NAME
    from vfio_conform.results import ResultStore
    monkeypatch.setattr(kernels, "PrivateApt", lambda root: FakeApt(root))
    monkeypatch.setattr(matrix, "default_cache_root", lambda: tmp_path / "cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))      # `lab run`'s cache root

    def fake_run_lab(profiles, reports, store, workers, extra, timeout, kernel):
        db = ResultStore(reports / STORE_NAME)
        outcome = ("fail", "EINVAL") if kernel.release == "7.3.4" else ("pass", "")
        run_id = write_run(db, "mtty", {"test_arc[mtty:RUNNING->STOP]": outcome}, kernel=kernel.kver)
        db.close()
        return [LabRun("mdev", ["mtty"], 1 if outcome[0] == "fail" else 0,
                       reports / "lab" / kernel.kver, run_ids=[run_id])]

    monkeypatch.setattr(matrix, "run_lab", fake_run_lab)


KVERS = ("6.1.0-57-amd64", "6.12.117+deb12-amd64", "7.3.4+deb13-amd64")


def test_lab_matrix_writes_runs_outputs_over_every_kernel_each_result_naming_its_kernel(
        tmp_path, monkeypatch, capsys):
    """--json, --ktap, --junit, --allure: the options of `lab run`, one file over the three
    kernels; each suite (JUnit, KTAP) and each Allure result names its kernel."""
    import json
    import xml.etree.ElementTree as ET
    from vfio_conform.cli.app import main
    _fake_matrix(tmp_path, monkeypatch)
    out = tmp_path / "out"
    out.mkdir()
    code = main(["lab", "matrix", "--profile", "mtty", "--reports", str(tmp_path / "reports"),
                 "--json", str(out / "s.json"), "--ktap", str(out / "r.ktap"),
                 "--junit", str(out / "junit.xml"), "--allure", str(out / "allure")])
    assert code == 1                                       # the failure on 7.3
    suites = ET.parse(out / "junit.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == [f"mtty (kernel {k})" for k in KVERS]
    assert [s.get("failures") for s in suites] == ["0", "0", "1"]
    ktap = (out / "r.ktap").read_text().splitlines()
    assert [line.split("# Subtest: ")[1] for line in ktap if "# Subtest:" in line] == \
        [f"mtty (kernel {k})" for k in KVERS]
    assert ktap[-1] == "not ok 3 mtty (kernel 7.3.4+deb13-amd64)"
    results = [json.loads(p.read_text()) for p in (out / "allure").glob("*-result.json")]
    assert len({r["historyId"] for r in results}) == len(results)      # never one test's retries
    arcs = {}
    for res in results:
        params = {p["name"]: p["value"] for p in res["parameters"]}
        assert params["profile"] == f"mtty (kernel {params['kernel']})" == res["titlePath"][0]
        if res["name"] == "test_arc[mtty:RUNNING->STOP]":
            arcs[params["kernel"]] = res["status"]
    assert arcs == {"6.1.0-57-amd64": "passed", "6.12.117+deb12-amd64": "passed",
                    "7.3.4+deb13-amd64": "failed"}
    assert "kernel.release=" + ", ".join(KVERS) in (out / "allure" / "environment.properties").read_text()
    summary = json.loads((out / "s.json").read_text())
    assert [p["kernel"] for p in summary["profiles"]] == list(KVERS)
    text = capsys.readouterr().out
    assert all(f"vfio-conform lab: matrix: {k}: " in text for k in KVERS)     # time per kernel


def test_lab_matrix_refuses_an_unwritable_output_before_resolving_or_booting(tmp_path, monkeypatch,
                                                                           capsys):
    from vfio_conform.cli.app import main
    _fake_matrix(tmp_path, monkeypatch)
    (tmp_path / "file").write_text("x")
    assert main(["lab", "matrix", "--reports", str(tmp_path / "reports"),
                 "--junit", str(tmp_path)]) == 2        # a directory
    assert "--junit" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists() and not (tmp_path / "cache").exists()


# --------------------------------------------------------------------------- docs/bad-input.md rows

def kernel_input_rows() -> list[dict]:
    """The rows of docs/bad-input.md's kernel-input table."""
    text = (ROOT / "docs" / "bad-input.md").read_text()
    table = text.split("<!-- kernel-input-table -->")[1].split("<!-- /kernel-input-table -->")[0]
    rows = []
    for line in table.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == 5, line
        message = cells[3].split("``")[1] if cells[3].startswith("``") else cells[3].strip("`")
        rows.append({"case": cells[0], "command": cells[2].strip("`"), "message": message,
                     "exit": int(cells[4])})
    return rows


def _archive_apt(tmp_path, monkeypatch, real_download: bool = False):
    """The fake archive for resolving and fetching; with `real_download`, `apt-get download` is
    the real PrivateApt command (a fake apt-get on PATH answers)."""
    class Apt(FakeApt):
        def _run(self, tool, args, cwd=None):
            if real_download and args[0] == "download":
                return PrivateApt._run(self, tool, args, cwd)
            return super()._run(tool, args, cwd)

    def make(root):
        apt = Apt(Path(root))
        apt.keyring = Path(sys.executable)          # any file: the archive is fake
        return apt
    monkeypatch.setattr(kernels, "PrivateApt", make)
    monkeypatch.setattr(archive, "PrivateApt", make)       # packages.py fetches through it
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _inject(case: str, tmp_path, monkeypatch) -> None:
    if case in ("unknown-kernel", "kernel-headers-missing"):
        _archive_apt(tmp_path, monkeypatch)
    elif case == "kernel-download-failed":
        _archive_apt(tmp_path, monkeypatch, real_download=True)
        fake_tool(tmp_path, monkeypatch, "apt-get",
                  'echo "E: Failed to fetch http://deb.debian.org/x.deb  404  Not Found" >&2\nexit 100\n')
    elif case == "kernel-disk-full":
        _archive_apt(tmp_path, monkeypatch)
        real = shutil.disk_usage
        monkeypatch.setattr(kernels.shutil, "disk_usage", lambda path: real(path)._replace(free=300 * MiB))
    else:
        raise AssertionError(f"no injection for the documented case {case!r}")


@pytest.mark.parametrize("row", kernel_input_rows(), ids=lambda r: r["case"])
def test_kernel_bad_input_is_refused_as_documented(tmp_path, monkeypatch, capsys, row):
    import shlex
    from vfio_conform.cli.app import main
    _inject(row["case"], tmp_path, monkeypatch)
    argv = shlex.split(row["command"])
    assert argv[0] == "vfio-conform"
    reports = tmp_path / "reports"
    extra = ["--reports", str(reports)] if argv[2] in ("run", "matrix", "consumers") else []
    assert main(argv[1:] + extra) == row["exit"]
    out, err = capsys.readouterr()
    stream = err if row["exit"] == 2 else out
    line = next((x for x in stream.splitlines() if x.startswith(row["message"].split("...")[0])), "")
    position = 0
    for part in row["message"].split("..."):
        found = line.find(part.strip(), position)
        assert part.strip() and found >= 0, (part, line, stream)
        position = found + len(part.strip())
    assert not reports.exists()
    if row["exit"] == 2:
        assert len(err.strip().splitlines()) == 1 and not (tmp_path / "cache" / "vfio-conform" / "lab"
                                                          / "7.3.4+deb13-amd64").exists()


def test_lab_run_takes_the_same_output_options(tmp_path, monkeypatch):
    """`lab run --kernel K --ktap --junit --allure`: the same writers over the boots' runs (one
    kernel: each suite is the profile's name)."""
    import xml.etree.ElementTree as ET
    from vfio_conform.cli.app import main
    from vfio_conform.qemu_lab import harness, matrix
    _fake_matrix(tmp_path, monkeypatch)
    monkeypatch.setattr(harness, "run_lab", matrix.run_lab)        # the fake boot
    out = tmp_path / "out"
    out.mkdir()
    assert main(["lab", "run", "--kernel", "6.12", "--reports", str(tmp_path / "reports"),
                 "--ktap", str(out / "r.ktap"), "--junit", str(out / "j.xml"),
                 "--allure", str(out / "allure")]) == 0
    assert [s.get("name") for s in ET.parse(out / "j.xml").getroot().findall("testsuite")] == ["mtty"]
    assert "    # Subtest: mtty" in (out / "r.ktap").read_text().splitlines()
    assert "kernel.release=6.12.117+deb12-amd64" in (out / "allure" / "environment.properties").read_text()


def test_a_kernel_whose_lab_fails_is_an_infra_error_and_the_matrix_goes_on(tmp_path, monkeypatch, capsys):
    """A build or boot error on one kernel (a variant's edit that no longer applies, say) is that
    kernel's infrastructure error: the other kernels still run, and `lab matrix` exits 3."""
    from vfio_conform.cli.app import main
    from vfio_conform.qemu_lab import matrix
    from vfio_conform.qemu_lab.config import KernelSpec
    from vfio_conform.qemu_lab.errors import LabError
    specs = [KernelSpec(abi="6.12.118+deb12", source_series="6.12", version="6.12.118-1"),
             KernelSpec(abi="7.3.4+deb13", source_series="7.3", version="7.3.4-1~bpo13+1")]
    monkeypatch.setattr(matrix, "resolve_kernels", lambda names, root: (specs, {}))
    ran = []

    def fake_run_lab(profiles, reports, store, workers, extra, timeout, kernel):
        if kernel.kver.startswith("6.12"):
            raise LabError("build", "mtty.c edit 'bug' expected 1 anchor, found 0")
        ran.append(kernel.kver)
        return []
    monkeypatch.setattr(matrix, "run_lab", fake_run_lab)
    monkeypatch.setattr(matrix, "uapi_check", lambda spec: 0)
    monkeypatch.setattr(matrix, "consumer_lane", lambda *a: 0)
    monkeypatch.setattr(matrix, "write_grid", lambda *a: None)
    code = main(["lab", "matrix", "--reports", str(tmp_path / "r"), "--no-consumers"])
    out = capsys.readouterr().out
    assert code == 3 and ran == [specs[1].kver]
    assert f"kernel {specs[0].kver}: infra-error: " in out and "expected 1 anchor" in out

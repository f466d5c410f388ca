"""Command-line options: one group, every flag prefixed --vc-."""
from __future__ import annotations


def add_options(parser) -> None:
    group = parser.getgroup("vfio-conform", "VFIO migration conformance")
    group.addoption("--vc-profile", action="append", default=[], metavar="NAME|PATH",
                    help="profile to test (repeatable): a name in profiles/ or a YAML path. "
                         "Without it the plugin does nothing.")
    group.addoption("--vc-device", action="append", default=[], metavar="ID",
                    help="device to test (repeatable; first = source, second = destination): "
                         "PCI BDF, mdev UUID, /dev/vfio/devices/vfioN or sim instance name; "
                         "PROFILE=ID assigns it to one of several profiles. "
                         "Default: the profile's 'devices'.")
    group.addoption("--vc-store", default=None, metavar="PATH",
                    help="SQLite result store (default: reports/results.sqlite of the current directory)")
    group.addoption("--vc-no-store", action="store_true", help="do not record results in SQLite")
    group.addoption("--vc-spill-dir", default=None, metavar="DIR",
                    help="where saved device states are spilled (a private subdirectory, removed at "
                         "the end; default: $VFIO_CONFORM_SPILL_DIR, else the system temp dir)")
    group.addoption("--vc-kernel-release", default=None, metavar="RELEASE",
                    help="kernel release used for hazard gates (default: uname -r)")
    group.addoption("--vc-progress-file", default=None, metavar="PATH",
                    help="write the id of each test as it starts (lets a lab name the test a dead "
                         "guest was running)")
    group.addoption("--vc-command", default=None, metavar="TEXT",
                    help="the user's command line a run records (set by `vfio-conform run`; "
                         "default: this pytest command); credentials and local paths are removed")
    group.addoption("--vc-inventory", default=None, metavar="FILE",
                    help="the host's device inventory: each worker leases a device (or pair) of each "
                         "profile from it, binds it where allowed and restores it (docs/hardware-hosts.md)")
    group.addoption("--vc-junit", default=None, metavar="PATH",
                    help="write JUnit XML here: one testsuite per profile with its environment "
                         "(valid against the Jenkins xunit schema junit-10.xsd)")
    group.addoption("--vc-junit-properties", action="store_true",
                    help="also give each JUnit testcase its record's fields as <properties> "
                         "(read by some parsers; outside junit-10.xsd)")
    group.addoption("--vc-ktap", default=None, metavar="PATH",
                    help="write KTAP version 1 here: one subtest per profile")
    group.addoption("--vc-store-mirror", default=None, metavar="PATH",
                    help="copy the SQLite store here when the run starts and ends, and journal each "
                         "result as it is stored (a store on local storage of a machine that may die: "
                         "the lab guest)")
    group.addoption("--vc-store-journal", default=None, metavar="PATH",
                    help="with --vc-store-mirror: where the journal goes (default: PATH.journal)")
    group.addoption("--vc-allure", default=None, metavar="DIR",
                    help="write Allure results here (Allure 2 and 3 read them): one result file per "
                         "test as it ends, with the environment, executor, categories and allurerc.json")
    group.addoption("--vc-allure-stats", default=None, metavar="FILE",
                    help="with --vc-allure, without xdist: write to FILE (JSON) how many result files "
                         "this process created and the seconds the creations took (the bench's "
                         "measure of the file system's share of Allure's cost)")
    group.addoption("--vc-stall-timeout", default=None, type=float, metavar="SECONDS",
                    help="with xdist: stop the run (incomplete, reason stalled) when no worker reported "
                         "anything for SECONDS (default: the longest timeouts.test + timeouts.io of the "
                         "profiles, plus 120; 0: never)")

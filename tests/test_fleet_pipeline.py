"""The example nightly pipeline fans out per host and gates on `vfio-conform diff`, and every
vfio-conform command in it is one the CLI accepts (it cannot drift from the harness)."""
from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from vfio_conform.cli.app import _parser

PIPELINE = Path(__file__).resolve().parents[1] / "examples" / "gitlab-nightly.yml"
VALUES = {"LG_COORDINATOR": "coord:20408", "INVENTORY": "/etc/inv.yaml", "HOST": "lab17",
          "VFIO_CONFORM_STORE": "postgresql://db/x"}


def _commands(job: dict) -> list[list[str]]:
    out = []
    for line in job["script"]:
        for key, value in VALUES.items():
            line = line.replace(f'"${key}"', value).replace(f"${key}", value)
        argv = shlex.split(line.split("||")[0])
        if argv[0] == "vfio-conform":
            out.append(argv[1:])
    return out


def test_pipeline_fans_out_per_host_and_gates_on_diff():
    doc = yaml.safe_load(PIPELINE.read_text())
    hosts = doc[".per-host"]["parallel"]["matrix"][0]["HOST"]
    assert len(hosts) >= 2 and doc[".per-host"]["tags"] == ["$HOST"]
    for name in ("places", "nightly", "gate"):
        assert doc[name]["extends"] == ".per-host"
    assert doc["stages"].index("gate") > doc["stages"].index("test")
    gate = _commands(doc["gate"])
    assert gate[0][:3] == ["diff", "prev", "latest"] and "--host" in gate[0]
    assert any(c[:2] == ["fleet", "run"] for c in _commands(doc["nightly"]))
    # each host publishes its own run (the shared store's newest session may be another host's)
    (report,) = [c for c in gate if c[0] == "report"]
    assert report[:2] == ["report", "latest"] and report[report.index("--host") + 1] == VALUES["HOST"]


def test_every_command_of_the_pipeline_parses():
    doc = yaml.safe_load(PIPELINE.read_text())
    parser = _parser()
    seen = 0
    for _name, job in doc.items():
        if not isinstance(job, dict) or "script" not in job:
            continue
        for argv in _commands(job):
            args, extra = parser.parse_known_args(argv)     # SystemExit (a failure) if it does not parse
            assert args.command in ("fleet", "devices", "diff", "report"), argv
            if extra:
                assert args.command == "fleet", (argv, extra)
            seen += 1
    assert seen == 5

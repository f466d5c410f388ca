"""`vfio-conform fleet`: labgrid exporter configuration, places and booked runs of one host."""
from __future__ import annotations

import argparse
import socket
import tempfile
from pathlib import Path


def add_parser(sub) -> None:
    fleet = sub.add_parser("fleet", help="book this host's devices through a labgrid coordinator "
                                         "and run them (docs/lab-operations.md)")
    fsub = fleet.add_subparsers(dest="fleet_command", required=True)
    exp = fsub.add_parser("exporter-config", help="print the labgrid-exporter configuration of an inventory")
    exp.add_argument("--inventory", required=True, metavar="FILE")
    exp.add_argument("--address", default="127.0.0.1", help="address the exported resources name")
    exp.set_defaults(func=_exporter_config)
    pl = fsub.add_parser("places", help="create a labgrid place per device (or pair) of this host")
    pl.add_argument("--coordinator", required=True, metavar="HOST:PORT")
    pl.add_argument("--inventory", required=True, metavar="FILE")
    pl.add_argument("--host", default=socket.gethostname(), help="this host's exporter name")
    pl.set_defaults(func=_places)
    run = fsub.add_parser("run", help="reserve and acquire this host's places, run them, release",
                          description="Arguments after -- go to `vfio-conform run` (e.g. --store URL).")
    run.add_argument("--coordinator", required=True, metavar="HOST:PORT")
    run.add_argument("--inventory", required=True, metavar="FILE")
    run.add_argument("--host", default=socket.gethostname(), help="this host's exporter name")
    run.add_argument("--profile", action="append", default=[], help="only these profiles' devices")
    run.add_argument("rest", nargs=argparse.REMAINDER)
    run.set_defaults(func=_run)


def _exporter_config(args, extra) -> int:
    from ..profile.inventory import load_inventory
    from .labgrid import exporter_config
    print(exporter_config(load_inventory(args.inventory), args.address), end="")
    return 0


def _places(args, extra) -> int:
    from ..profile.inventory import load_inventory
    from .labgrid import LabgridClient, create_places
    inventory = load_inventory(args.inventory)
    made = create_places(LabgridClient(args.coordinator), inventory, args.host)
    print(f"vfio-conform fleet: {args.host}: {len(inventory.units())} place(s), "
          f"{len(made)} created{': ' + ', '.join(made) if made else ''}")
    return 0


def _run(args, extra) -> int:
    from ..errors import InfraError
    from .labgrid import run_booked
    rest = list(args.rest) + list(extra)
    if rest[:1] == ["--"]:           # the rest is `vfio-conform run`'s, its own `--` included
        rest = rest[1:]
    try:
        with tempfile.TemporaryDirectory(prefix="vc-fleet-") as tmp:
            return run_booked(args.coordinator, args.inventory, args.host, rest, args.profile or None, Path(tmp))
    except InfraError as exc:
        print(f"vfio-conform fleet: {exc}")
        return 3

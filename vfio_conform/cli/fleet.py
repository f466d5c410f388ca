"""`vfio-conform fleet`: labgrid exporter configuration, places and booked runs of one host."""
from __future__ import annotations

import argparse
import os
import socket

#: labgrid's own environment: the coordinator, a place and a reservation the job already has.
COORDINATOR_ENV, PLACE_ENV, TOKEN_ENV = "LG_COORDINATOR", "LG_PLACE", "LG_TOKEN"


def _coordinator(parser) -> None:
    parser.add_argument("--coordinator", default=os.environ.get(COORDINATOR_ENV), metavar="HOST:PORT",
                        help=f"the labgrid coordinator (default: ${COORDINATOR_ENV})")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds >= 0")
    return value


def _tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    return key, value


def add_parser(sub) -> None:
    fleet = sub.add_parser("fleet", help="book this host's devices through a labgrid coordinator "
                                         "and run them (docs/hardware-hosts.md)")
    fsub = fleet.add_subparsers(dest="fleet_command", required=True)
    exp = fsub.add_parser("exporter-config", help="print the labgrid-exporter configuration of an inventory")
    exp.add_argument("--inventory", required=True, metavar="FILE")
    exp.add_argument("--address", default="127.0.0.1", help="address the exported resources name")
    exp.set_defaults(func=_exporter_config)
    pl = fsub.add_parser("places", help="create a labgrid place per device (or pair) of this host")
    _coordinator(pl)
    pl.add_argument("--inventory", required=True, metavar="FILE")
    pl.add_argument("--host", default=socket.gethostname(), help="this host's exporter name")
    pl.set_defaults(func=_places)
    run = fsub.add_parser(
        "run", help="reserve and acquire this host's places, run them, release",
        description="Arguments after -- go to `vfio-conform run` (e.g. --store URL). Exit: the run's "
                    "code; 3 when a place could not be booked within --wait, on SIGTERM/SIGINT "
                    "(the run ends terminated, the places are released) or when a device hung.")
    _coordinator(run)
    run.add_argument("--inventory", required=True, metavar="FILE")
    run.add_argument("--host", default=socket.gethostname(), help="this host's exporter name")
    run.add_argument("--profile", action="append", default=[], help="only these profiles' devices")
    run.add_argument("--place", default=os.environ.get(PLACE_ENV), metavar="NAME",
                     help=f"book this place of the lab for every selected unit (default: ${PLACE_ENV}; "
                          "else the places `fleet places` created)")
    run.add_argument("--tag", action="append", type=_tag, default=[], metavar="KEY=VALUE",
                     help="book any place with these tags for every selected unit (repeatable)")
    run.add_argument("--wait", type=_seconds, default=None, metavar="SECONDS",
                     help="how long to wait for a place another user holds (default: no limit)")
    run.add_argument("--show-every", type=_seconds, default=30.0, metavar="SECONDS",
                     help="while waiting, say who holds the place this often (default 30)")
    run.add_argument("rest", nargs=argparse.REMAINDER)
    run.set_defaults(func=_run)


def _need_coordinator(args) -> str:
    from ..base.errors import ConfigError
    if not args.coordinator:
        raise ConfigError(f"no labgrid coordinator: pass --coordinator HOST:PORT or set ${COORDINATOR_ENV}")
    return args.coordinator


def _exporter_config(args, extra) -> int:
    from ..hosts.inventory import load_inventory
    from ..fleet.places import exporter_config
    print(exporter_config(load_inventory(args.inventory), args.address), end="")
    return 0


def _places(args, extra) -> int:
    from ..base.errors import InfraError
    from ..hosts.inventory import load_inventory
    from ..fleet.labgrid import LabgridClient
    from ..fleet.places import create_places
    inventory = load_inventory(args.inventory)
    try:
        made = create_places(LabgridClient(_need_coordinator(args)), inventory, args.host)
    except InfraError as exc:
        print(f"vfio-conform fleet: {exc}")
        return 3
    print(f"vfio-conform fleet: {args.host}: {len(inventory.units())} place(s), "
          f"{len(made)} created{': ' + ', '.join(made) if made else ''}")
    return 0


def _run(args, extra) -> int:
    from ..fleet.booked_run import FleetOptions, run_booked
    rest = list(args.rest) + list(extra)
    if rest[:1] == ["--"]:           # the rest is `vfio-conform run`'s, its own `--` included
        rest = rest[1:]
    opts = FleetOptions(coordinator=_need_coordinator(args), inventory=args.inventory, host=args.host,
                        run_args=rest, profiles=args.profile or None, place=args.place,
                        tags=dict(args.tag) or None, token=os.environ.get(TOKEN_ENV) or None,
                        wait=args.wait, show_every=args.show_every)
    return run_booked(opts)

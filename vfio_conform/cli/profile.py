"""`vfio-conform profile new | check | schema`: write a draft, explain a profile, print the JSON Schema."""
from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    prof = sub.add_parser("profile", help="write a draft profile from a device, check one, or print "
                                          "the profile JSON Schema (docs/profile-tools.md)")
    psub = prof.add_subparsers(dest="profile_command", required=True)
    new = psub.add_parser("new", help="probe a live device (read-only) and write a draft profile",
                          description="Every guessed field carries a '# REVIEW:' comment. The device is "
                                      "only queried: no migration SET, no region access, no reset.")
    new.add_argument("--from-device", action="append", default=[], required=True, metavar="ID",
                     help="device id: a BDF, mdev UUID or cdev (kernel), vfio-user:SOCKET, or "
                          "PROFILE=ID (opened as that profile opens it, e.g. sim-stop-copy=sim0); "
                          "repeat for the destination (compares the region layouts)")
    new.add_argument("--backend", default=None, help="the backend that opens the device (default: NAME "
                                                     "for an id NAME:..., else the host's)")
    new.add_argument("--name", default=None, help="profile name (default: <matched profile>-draft)")
    new.add_argument("-o", "--output", default=None, metavar="FILE",
                     help="write the draft here (never overwritten; default: stdout)")
    new.set_defaults(func=_new)
    check = psub.add_parser("check", help="validate a profile and say what a run would do with it "
                                          "(no device is opened)")
    check.add_argument("path", metavar="FILE|NAME")
    check.add_argument("--kernel-release", default=None,
                       help="kernel for the hazard gates (default: uname -r)")
    check.set_defaults(func=_check)
    schema = psub.add_parser("schema", help="print the profile JSON Schema (docs/profile.schema.json)")
    schema.set_defaults(func=_schema)


def _new(args: argparse.Namespace, extra) -> int:
    from ..tools.profile_draft import new_draft, write_draft
    draft = new_draft(args.from_device, backend=args.backend, name=args.name)
    write_draft(draft, args.output)
    if args.output:
        print(f"vfio-conform: draft profile {draft.name} written to {args.output}; "
              f"review every '# REVIEW:' line", file=sys.stderr)
    return 0


def _check(args: argparse.Namespace, extra) -> int:
    from ..tools.profile_check import check_profile_file
    print(check_profile_file(args.path, args.kernel_release).render(), end="")
    return 0


def _schema(args: argparse.Namespace, extra) -> int:
    from ..profile.jsonschema import schema_text
    print(schema_text(), end="")
    return 0

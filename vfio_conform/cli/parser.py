"""The command line's parser: a bad argument is one line on stderr and exit 2.

argparse prints the whole usage before its error; a lab's log or a CI job's summary then shows
the usage and hides the reason. This parser prints `PROG: error: MESSAGE (see PROG --help)` alone,
for the top level and for every command (subparsers are made of the same class).
"""
from __future__ import annotations

import argparse
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """argparse with a one-line error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive(kind: type) -> object:
    """An argparse `type` that takes a number of `kind` above zero."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text} is not above zero")
        return value
    parse.__name__ = f"positive {kind.__name__}"
    return parse



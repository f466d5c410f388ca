"""The command line a run records and a report shows: the user's command, nothing secret or local.

Store URLs lose their credentials (`postgresql://user:pw@db/x` -> `postgresql://***@db/x`, a
`password=` parameter -> `password=***`) and absolute paths are reduced to their file names. A
command recorded by an older harness (the internal pytest command line `vfio-conform run` built)
is shown as the `vfio-conform run` command it came from.
"""
from __future__ import annotations

import os
import re
import shlex

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s?#]*@")
#: The password part of a URL's user info: `user:pw@`, `:pw@` (no user name), percent-encoded or not.
_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/:@\s?#]*):[^/\s?#]*@")
_SECRET_PARAM = re.compile(r"(?i)\b(password|passwd|pwd|sslpassword|secret|token)=[^&\s'\"]*")
_SQLITE_URL = re.compile(r"(?i)^(sqlite:///)(/.*)$")

#: Options of the internal pytest command: (its flag, the user's flag or None to drop, takes a value).
_INTERNAL = {"--rootdir": (None, True), "-p": (None, True), "-W": (None, True),
             "--junitxml": (None, True), "--vc-junit": (None, True), "--vc-ktap": ("--ktap", True),
             "--alluredir": (None, True), "--vc-allure": (None, True), "--dist": (None, True),
             "--vc-progress-file": (None, True), "--vc-store-mirror": (None, True), "--vc-store-journal": (None, True),
             "--vc-profile": ("--profile", True),
             "--vc-device": ("--device", True), "--vc-store": ("--store", True),
             "--vc-kernel-release": ("--kernel-release", True), "--vc-no-store": ("--no-store", False),
             "-n": ("-n", True), "-q": ("-q", False), "-v": (None, False)}


def redact_secrets(text: str) -> str:
    """`text` with the credentials of every URL and secret query parameters replaced by ***."""
    return _SECRET_PARAM.sub(r"\1=***", _USERINFO.sub(r"\1***@", text or ""))


def mask_password(text: str) -> str:
    """`text` with every URL password and secret parameter replaced by *** (the user name stays:
    `postgresql://u:***@h/db`, `postgresql://:***@h/db`, `...?password=***`). For messages, tables
    and files that name a store."""
    return _SECRET_PARAM.sub(r"\1=***", _PASSWORD.sub(r"\1:***@", text or ""))


def public_command(text: str) -> str:
    """What a report shows of a recorded command (see the module docstring); idempotent."""
    if not text:
        return ""
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    if _is_internal(words):
        words = _user_form(words)
    return shlex.join(_public_word(w) for w in words)


def _public_word(word: str) -> str:
    word = redact_secrets(word)
    flag, eq, value = word.partition("=") if word.startswith("--") and "=" in word else ("", "", word)
    m = _SQLITE_URL.match(value)
    if m:
        value = m.group(1) + os.path.basename(m.group(2))
    elif value.startswith("/") and "://" not in value:
        value = os.path.basename(value.rstrip("/")) or value
    return f"{flag}{eq}{value}" if eq else value


def _is_internal(words: list[str]) -> bool:
    """The shape of the pytest command `vfio-conform run` builds: the suites directory, then --rootdir."""
    return len(words) > 2 and words[0].rstrip("/").endswith("suites") and words[1] == "--rootdir"


def _user_form(words: list[str]) -> list[str]:
    out, rest, i = ["vfio-conform", "run"], [], 1
    while i < len(words):
        word = words[i]
        if word in _INTERNAL:
            user, takes = _INTERNAL[word]
            value = words[i + 1:i + 2] if takes else []
            if user:
                out += [user, *value]
            i += 2 if takes else 1
        else:
            rest.append(word)
            i += 1
    return out + (["--", *rest] if rest else [])


def redact_paths(text: str) -> str:
    """`text` (a failure message, trace or captured output) without this machine's absolute paths:
    the checkout (or the folder holding the installed suites) and the current directory become
    relative, the Python installation `<python>/...`, the home directory `~/...`. Hypothesis'
    explanations and tracebacks name source files by absolute path; the records keep them relative."""
    if not text or "/" not in text:
        return text or ""
    for prefix, short in _machine_prefixes():
        if prefix in text:
            text = text.replace(prefix, short)
    return text


_PREFIXES: list[tuple[str, str]] = []


def _machine_prefixes() -> list[tuple[str, str]]:
    """(absolute folder with a trailing slash, its replacement), longest first; computed once."""
    if not _PREFIXES:
        import sys
        import sysconfig

        from ..base.constants import CHECKOUT, SUITES_ROOT
        places = [(SUITES_ROOT, ""), (CHECKOUT, ""), (os.getcwd(), ""), (sys.prefix, "<python>/"),
                  (sys.base_prefix, "<python>/"), (os.path.expanduser("~"), "~/")]
        places += [(path, "<site-packages>/" if name.endswith("lib") else "<stdlib>/")
                   for name, path in sysconfig.get_paths().items()
                   if name in ("stdlib", "platstdlib", "purelib", "platlib")]
        found: dict[str, str] = {}
        for place, short in places:
            for form in {str(place), os.path.realpath(place)}:
                form = form.rstrip(os.sep)
                if form.count(os.sep) >= 2 or (form.count(os.sep) == 1 and short):   # never "/" itself
                    found.setdefault(form + os.sep, short)
        _PREFIXES.extend(sorted(found.items(), key=lambda pair: -len(pair[0])))
    return _PREFIXES

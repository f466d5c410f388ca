"""The three families of errors: configuration, findings (spec violations), infrastructure."""
from __future__ import annotations

import errno as _errno


def errno_name(code: int | None) -> str:
    """'EINVAL' for 22, 'OK' for 0/None."""
    if not code:
        return "OK"
    return _errno.errorcode.get(code, f"errno {code}")


class VfioConformError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(VfioConformError):
    """A bad profile, option or device name: the run does not start.

    Prints as `path:line: field: message`.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None,
                 field: str | None = None, hint: str | None = None):
        self.message, self.path, self.line, self.field, self.hint = message, path, line, field, hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        field = f"{self.field}: " if self.field else ""
        hint = f" ({self.hint})" if self.hint else ""
        return one_line(f"{where}{field}{self.message}{hint}")


#: The longest error line printed (a 5000-digit number or a pasted file stays one short line).
MAX_MESSAGE = 400


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` as one bounded line: control characters (ESC, NUL, newlines) escaped, cut at `limit`."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def shown(value, limit: int = 60) -> str:
    """repr(value) for an error message, bounded (a huge integer is described, not printed)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"a {value.bit_length()}-bit number"
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class SpecViolation(AssertionError, VfioConformError):
    """The device broke a rule of the spec: a finding, reported as a test failure."""

    def __init__(self, rule_id: str, message: str, device: str | None = None):
        self.rule_id, self.message, self.device = rule_id, message, device
        super().__init__(str(self))

    def __str__(self) -> str:
        from ..model.spec import RULES
        rule = RULES.get(self.rule_id)
        quote = f"\n  rule: {rule.text}" if rule else ""
        dev = f" on {self.device}" if self.device else ""
        return f"[{self.rule_id}]{dev}: {self.message}{quote}"


class UapiError(OSError, VfioConformError):
    """An ioctl/read/write returned an errno the caller did not allow for.

    Prints the operation, its arguments by name and the errno by name.
    """

    def __init__(self, code: int, operation: str, device: str | None = None):
        self.operation, self.device = operation, device
        super().__init__(code, f"{operation}: {errno_name(code)}" + (f" on {device}" if device else ""))

    def __str__(self) -> str:
        return self.strerror


class InfraError(VfioConformError):
    """The harness, the lab or the host failed (not the device): an infrastructure error."""


class RequestAborted(InfraError):
    """The device's server closed the connection in response to a request, sending no reply at all.

    An infrastructure error unless the device layer knows the request was one the device had to
    answer (e.g. a SET along a legal arc): then it is the device breaking that request's rule.
    `request` names the request (set by the raiser).
    """

    request: str = ""


class DeviceNotFound(ConfigError):
    """The named device does not exist on this host."""


class HarnessTimeout(InfraError, TimeoutError):
    """An operation that can block did not finish in time."""

"""v1 suites use the protocol-neutral device fixtures of the region suites."""
from suites.regions.conftest import any_device, any_peer  # noqa: F401

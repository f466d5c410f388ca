"""The pytest plugin (entry point `pytest11`): inert unless --vc-profile is given."""
import pytest

from .hooks import (pytest_addoption, pytest_collection_modifyitems, pytest_configure,  # noqa: F401
                    pytest_generate_tests, pytest_runtest_makereport,
                    pytest_runtest_setup,
                    pytest_report_header)
from .hooks import note_selection
from .rulecheck import check_rule_ids


def pytest_collection_finish(session) -> None:
    check_rule_ids(session)         # a suite naming an unknown rule stops the run here
    note_selection(session)


#: Every fixture of the suites (fixtures/ of a checkout, vfio_conform/fixtures of a wheel), registered
#: with the plugin as a plugin of its own.
pytest_plugins = ["vfio_conform.fixtures"]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """`-n auto` with an inventory (plugin/inventory.py, loaded only for a run with one)."""
    if not config.getoption("vc_inventory", None):
        return None
    from .inventory import pytest_xdist_auto_num_workers as by_inventory
    return by_inventory(config)


def pytest_addhooks(pluginmanager) -> None:
    """Expose the hooks a vendor plugin may implement (vfio_conform/plugin/hookspecs.py)."""
    from . import hookspecs
    pluginmanager.add_hookspecs(hookspecs)

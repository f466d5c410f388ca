"""The checkout's top-level conftest: `pytest suites/ --vc-profile NAME` runs the suites here.

The vfio-conform pytest plugin (and with it the suites' fixtures, fixtures/) is loaded by its
`pytest11` entry point once the project is installed (`pip install -e .`); a checkout that is only
on PYTHONPATH gets it from here. The plugin is inert without --vc-profile, so the harness's own
tests (tests/, the checkout's testpaths) are unaffected.
"""


def pytest_addhooks(pluginmanager) -> None:
    if not (pluginmanager.has_plugin("vfio_conform") or pluginmanager.has_plugin("vfio_conform.plugin")
            or pluginmanager.is_blocked("vfio_conform")):
        pluginmanager.import_plugin("vfio_conform.plugin")

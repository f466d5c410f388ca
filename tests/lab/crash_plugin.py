"""pytest plugin loaded only by the lab crash test: panics the guest kernel in the 3rd test."""
_started = []


def pytest_runtest_call(item):
    _started.append(item.nodeid)
    if len(_started) == 3:
        with open("/proc/sysrq-trigger", "w") as f:
            f.write("c")

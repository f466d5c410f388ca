"""Tools a user runs beside the suites: profile check/new, the uAPI header check, the kselftest wrapper.

The pytest plugin does not own them: they use the run's target selection (vfio_conform.targets) and,
where a tool collects the suites, the plugin as any pytest run does.
"""

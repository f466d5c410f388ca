"""The command line: `vfio-conform` (app.py) and one module per command group (lab, fleet, report, bench, profile)."""

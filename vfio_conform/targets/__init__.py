"""What a run targets, decided before any device is touched and without pytest's plugin: the selected
profiles and their devices, each profile checked (waivers against the suites, its backend section),
the model's requirements of a test, and a test item's parameters."""

"""Root conftest: suite-side fixtures live in fixtures/ (the plugin itself comes from the entry point)."""
pytest_plugins = ["fixtures.sessions"]

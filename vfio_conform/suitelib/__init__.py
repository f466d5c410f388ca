"""The suite library: what the suites call (checks, the v1 migration driver, depth helpers, consumer sequences)."""

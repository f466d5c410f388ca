"""Backends: byte-level transports to a device (sim, kernel) and their registry."""

"""Backends: byte-level transports to a device, each one registered Backend (registry.py): sim, kernel, plugins."""

"""vfio-conform: conformance harness for the Linux VFIO device migration uAPI."""

__version__ = "0.1.0"

"""Conformance reports from the result store: state x state matrix, HTML page, run diff, trend."""

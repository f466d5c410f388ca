"""Helpers of the depth suites: resume outcomes, stream mutations, DMA logging calls, random walks."""

"""The harness's costs (`vfio-conform bench`, parsed by vfio_conform/cli/bench.py) as ratios against raw baselines measured in the same run.

Sections: transitions (harness vs bare Python vs C per SET MIG_DEVICE_STATE), streams (a large sim
state saved and resumed with bounded memory, data_fd throughput vs a C pipe loop), scaling (1, 2,
4, 8 sim devices) and suite (the full sim suite's wall time, and what its Allure output adds in
CPU time and, with valgrind, in instructions). Every run is written as JSON beside
the results store so `vfio-conform bench --diff OLD NEW` shows a regression between runs.
"""

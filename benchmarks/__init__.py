"""Benchmarks and probes for developers (not installed with the package): run them from the
repository root as ``python benchmarks/X.py`` or ``python -m benchmarks.X``. ``harness`` is
``benchmark.py``'s logic (training-step and inference speed, memory, MFU)."""

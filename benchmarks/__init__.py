"""Benchmarks: ``python -m benchmarks.run`` measures every scenario against its baselines."""

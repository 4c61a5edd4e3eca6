"""Benchmarks for Big Three (loopback only). Run `python -m bench.run`."""

"""Benchmarks for addtolib: `python -m benchmarks [--quick] [--only NAME]`."""

"""Benchmarks that print the figures of DESIGN.md §7. Run ``python -m bench NAME [args]``."""

"""Benchmarks behind ``aoai-realtime bench ...`` (issue 12: outside the library packages; nothing in the library
imports this package). Each module has a ``register(bench_app)`` that adds its command."""

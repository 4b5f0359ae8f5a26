"""Helpers for tests of code built on aoai-realtime (audio fixtures in :mod:`aoai_realtime.testing.audio`).

Nothing is imported here, so importing the package costs nothing; import the submodules you need.
"""

"""Shared test settings. Hypothesis runs without deadlines: the machines are shared and noisy, and a
timing assertion has no place in a unit test."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("default")

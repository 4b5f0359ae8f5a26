from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from aoai_realtime.bench.speech import run
from aoai_realtime.cli import _register_all, app


@pytest.mark.integration  # the benchmark's audio comes from flite
def test_bench_speech_command_prints_figures() -> None:
    _register_all()
    result = CliRunner().invoke(app, ["bench", "speech", "--only", "vad,resample", "--repeat", "1"])
    assert result.exit_code == 0, result.output
    for row in ("silero", "webrtc", "energy", "48k stereo -> 24k mono"):
        assert re.search(rf"^{re.escape(row)}\s.*\d", result.output, re.MULTILINE), row


def test_bench_rejects_unknown_parts() -> None:
    with pytest.raises(ValueError, match="unknown benchmark part"):
        run(only="vad,gpu")

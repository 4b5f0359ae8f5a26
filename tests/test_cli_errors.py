"""What a user sees when a command fails: one or two lines naming the cause and the fix on stderr, exit code 2
for usage and 1 for failure, no traceback unless ``--debug`` or a bug (issue 14 items 6 and 7).

The commands run in this process through :func:`aoai_realtime.cli_errors.run_cli`, as ``main()`` runs them;
the engine they talk to is served on loopback from a thread (:func:`aoai_realtime.testing.engine.serve_engine`).
"""

from __future__ import annotations

import asyncio
import io
import random
import socket
import struct
import threading
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from rich.console import Console

from aoai_realtime import __version__
from aoai_realtime.cli import _register_all, app
from aoai_realtime.cli_errors import explain, run_cli
from aoai_realtime.errors import AuthenticationError, ConfigError, ConnectError

KEY = "sk-local-cli-test-key"


@pytest.fixture(scope="module", autouse=True)
def _commands() -> None:
    if not any(c.name == "engine" for c in app.registered_commands):
        _register_all()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run_cli(app, list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_error(err: str) -> str:
    """The error as printed: at most two lines, the first starting with 'error:', and no traceback."""
    lines = err.strip().splitlines()
    assert "Traceback" not in err and 1 <= len(lines) <= 2, err
    assert lines[0].startswith("error: "), err
    return err.strip()


def write_pcm(path: Path, samples: list[int], rate: int = 24000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return path


@pytest.fixture(scope="module")
def engine_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A plain and a TLS (self-signed) engine on loopback, served from a thread: their base URLs and the cert."""
    from aoai_realtime.engine.brain.rules import RulesBrain
    from aoai_realtime.engine.engine import Engine, EngineConfig
    from aoai_realtime.engine.tls import self_signed
    from aoai_realtime.testing.engine import load_test_speech, serve_engine

    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    urls: dict[str, str] = {"cert": str(cert)}
    ready, stop = threading.Event(), threading.Event()

    def make() -> Engine:
        return Engine(EngineConfig(api_key=KEY, brain=RulesBrain, speech=load_test_speech("fake")))

    async def serve() -> None:
        try:
            async with serve_engine(make()) as plain, serve_engine(make(), tls=(cert, key)) as tls:
                urls.update(plain=plain, tls=tls)
                ready.set()
                await asyncio.to_thread(stop.wait)
        finally:
            ready.set()  # a failed start wakes the test, which then finds no URLs

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(30) and "plain" in urls, "the engines did not start"
    yield urls
    stop.set()
    thread.join(10)


pytestmark = pytest.mark.integration


# -- the six cases of the issue ---------------------------------------------------------------------------------


def test_wrong_key(capsys: pytest.CaptureFixture[str], engine_urls: dict[str, str]) -> None:
    code, _, err = run(capsys, "talk", "hi", "--url", engine_urls["plain"] + "/v1", "--key", "sk-wrong-key-123456")
    assert code == 1
    assert "refused the credentials (HTTP 401); check the key" in one_error(err)
    assert "sk-wrong-key-123456" not in err


def test_missing_wav(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "question.wav"
    code, _, err = run(capsys, "talk", str(missing), "--speech", "fake")
    assert code == 2
    assert one_error(err) == f"error: no such WAV file: {missing}; check the path"


def test_unreachable_engine(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        code, _, err = run(capsys, "talk", "hi", "--url", f"http://127.0.0.1:{port}/v1", "--key", "k")
    assert code == 1
    text = one_error(err)
    assert f"ws://127.0.0.1:{port}/v1/realtime" in text and "start it (e.g. 'aoai-realtime engine')" in text


def test_unknown_speech(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "talk", "hi", "--speech", "bogus")
    assert code == 2
    assert "invalid value for --speech: 'bogus' is not one of full, light, fake" in one_error(err)


def test_missing_users_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOAI_ENGINE_API_KEY", "k")
    users = tmp_path / "users.json"
    code, _, err = run(capsys, "serve", "--users", str(users), "--base-url", "http://127.0.0.1:9/v1")
    assert code == 2
    assert f"the users file {users} does not exist" in err and "Traceback" not in err


def test_missing_tls_cert_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    key.write_text("not used")
    code, _, err = run(capsys, "engine", "--port", "0", "--speech", "fake", "--tls-cert", str(cert),
                       "--tls-key", str(key))  # fmt: skip
    assert code == 2
    assert f"invalid value for --tls-cert: no such file: {cert}" in one_error(err)


def test_tls_files_that_are_not_pem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("garbage")
    code, _, err = run(capsys, "engine", "--port", "0", "--tls-cert", str(bad), "--tls-key", str(bad))
    assert code == 2
    assert "are not a PEM certificate and its private key" in one_error(err)


# -- talk's inputs and targets (item 7) -------------------------------------------------------------------------


def test_empty_input_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "talk", "")
    assert code == 2
    assert "an input is empty" in one_error(err)


def test_a_text_file_named_wav(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    fake = tmp_path / "notes.wav"
    fake.write_text("these are my notes, not audio\n")
    code, _, err = run(capsys, "talk", str(fake), "--speech", "fake")
    assert code == 2
    assert one_error(err).startswith(f"error: not a WAV file: {fake} (it starts with b'these are my'")


def test_a_silent_wav_is_refused_before_connecting(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    silent = write_pcm(tmp_path / "silence.wav", [0] * 48000)
    code, _, err = run(capsys, "talk", str(silent), "--url", "http://127.0.0.1:9/v1")  # never reached
    assert code == 2
    assert one_error(err).startswith(f"error: no speech in {silent}: its 2.0 s of audio are silent")


async def test_audio_in_which_the_service_hears_no_speech(tmp_path: Path) -> None:
    from aoai_realtime.apps.talk import NoSpeechHeard, talk

    rng = random.Random(7)  # noise above the silence check, below the energy VAD's speech level
    hiss = write_pcm(tmp_path / "hiss.wav", [rng.randint(-90, 90) for _ in range(24000)])
    with pytest.raises(NoSpeechHeard, match=r"no speech heard in .*hiss\.wav"):
        await talk([str(hiss)], speech="fake", console=Console(file=io.StringIO()), no_speech_s=0.5)


def test_engine_url_without_v1_is_a_wrong_path(capsys: pytest.CaptureFixture[str], engine_urls: dict[str, str]) -> None:
    base = engine_urls["plain"]
    code, _, err = run(capsys, "talk", "hi", "--url", base, "--key", KEY)
    assert code == 2
    text = one_error(err)
    assert "the path is wrong, not the key" in text and f"--url {base}/v1" in text


def test_self_signed_engine_needs_and_accepts_ca_file(capsys: pytest.CaptureFixture[str],
                                                      engine_urls: dict[str, str]) -> None:
    url = engine_urls["tls"] + "/v1"
    code, _, err = run(capsys, "talk", "hi", "--url", url, "--key", KEY)
    assert code == 1
    assert "CERTIFICATE_VERIFY_FAILED" in err and "pass --ca-file CERT.pem" in one_error(err)
    code, out, err = run(capsys, "talk", "hi", "--url", url, "--key", KEY, "--ca-file", engine_urls["cert"])
    assert code == 0, err
    assert "assistant:" in out


# -- the boundary itself ----------------------------------------------------------------------------------------


def _boom_app(exc: BaseException) -> typer.Typer:
    boom = typer.Typer()

    @boom.callback()
    def root(debug: bool = typer.Option(False, "--debug")) -> None:
        pass

    @boom.command()
    def go() -> None:
        raise exc

    @boom.command()
    def other() -> None:
        pass

    return boom


def test_a_bug_shows_its_traceback_and_asks_for_a_report(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(_boom_app(KeyError("api_key=abcdef0123456789abcdef0123456789")), ["go"])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" in err and "KeyError" in err and "please report it" in err.splitlines()[-1]
    assert "abcdef0123456789abcdef0123456789" not in err  # secrets redacted in tracebacks too


def test_debug_adds_the_traceback_to_a_known_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(_boom_app(ConfigError("bad --thing")), ["go"]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert run_cli(_boom_app(ConfigError("bad --thing")), ["go", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().endswith("error: bad --thing")


def test_explain_unwraps_a_task_group_and_keeps_usage_and_failure_apart() -> None:
    group = ExceptionGroup("tasks", [ExceptionGroup("inner", [AuthenticationError("refused", status=401)])])
    assert (explanation := explain(group)) is not None and explanation.exit_code == 1
    assert explain(ConfigError("x")).exit_code == 2  # type: ignore[union-attr]
    assert explain(FileNotFoundError(2, "No such file or directory", "/x.json")).exit_code == 2  # type: ignore[union-attr]
    refused = explain(ConnectError("could not open a WebSocket to ws://h/v1/realtime: ConnectionRefusedError: x"))
    assert refused is not None and "start it" in refused.fix
    assert explain(FileNotFoundError(2, "No such file or directory")) is None  # no file named: a bug to show
    assert explain(RuntimeError("x")) is None


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--version") == (0, f"aoai-realtime {__version__}\n", "")


def _commands_of(group: object, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield prefix
    for name, sub in sorted(getattr(group, "commands", {}).items()):
        yield from _commands_of(sub, (*prefix, name))


def test_help_of_every_command_shows_no_bool_metavar(capsys: pytest.CaptureFixture[str]) -> None:
    commands = list(_commands_of(typer.main.get_command(app)))
    assert ("talk",) in commands and ("bench", "memory") in commands
    for path in commands:
        code, out, err = run(capsys, *path, "--help")
        assert code == 0 and "--help" in out, (path, err)
        assert "<bool>" not in out and "BOOLEAN" not in out, (path, out)


def test_worker_refuses_a_file_that_is_not_its_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "steps.db"
    bad.write_text("these are notes, not a database " * 20)
    code, _, err = run(capsys, "worker", "--store", str(bad), "--status")
    assert code == 2
    assert one_error(err).startswith(f"error: cannot use {bad} as the steps store (file is not a database)")


def test_engine_refuses_an_unknown_brain_before_loading_models(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "engine", "--port", "0", "--speech", "fake", "--brain", "bogus")
    assert code == 2
    assert "unknown brain 'bogus'" in one_error(err) and "loading speech" not in err

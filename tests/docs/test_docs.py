"""Every code block of README.md and docs/*.md, run as a reader would run it (issue 14 item 9).

- ``python`` blocks run in a fresh interpreter in a scratch directory, as ``python -m asyncio`` runs them: a
  top-level ``await`` works, and a block that calls ``asyncio.run`` works too. They talk to a local engine
  (fake speech, rules brain) served by this module: the documented ``127.0.0.1:8765`` is replaced by its
  address and ``AOAI_ENGINE_API_KEY`` holds its key. A ``question.wav`` (a spoken question) is in the directory.
- ``bash``/``sh``/``shell`` blocks run with ``bash -e`` from the repository root, against the same engine.
  ``console`` blocks hold ``$ command`` lines and the output the docs promise: each promised line must appear.
- ``json`` and ``yaml`` blocks must parse.
- A ``text`` block right after a runnable block, preceded by ``<!-- output -->``, is the output the docs promise
  for it: each of its lines must appear (``...`` in a line stands for anything).

A block that cannot run here (it needs Azure, or runs until interrupted) is preceded in the doc by
``<!-- not-tested: reason -->``; the reason is shown as the skip reason. Every block must exit 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
KEY = "sk-local-docs-test-key"
DOC_ENGINE = "127.0.0.1:8765"
RUN = {"python", "bash", "sh", "shell", "console", "json", "yaml"}
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
_NOT_TESTED = re.compile(r"<!--\s*not-tested:\s*(.+?)\s*-->")
_OUTPUT = re.compile(r"<!--\s*output\s*-->")
_RUNNER = """
import ast, asyncio, sys
path = sys.argv[1]
code = compile(open(path).read(), path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
result = eval(code, {"__name__": "__main__"})
if asyncio.iscoroutine(result):
    asyncio.run(result)
"""

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int
    lang: str
    code: str
    skip: str | None
    promised: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def blocks() -> list[Block]:
    """The fenced blocks of the docs in a language this module runs, with their not-tested reason if any."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        fences = list(_FENCE.finditer(text))
        for i, m in enumerate(fences):
            lang = m.group(1).lower()
            if lang not in RUN:
                continue
            before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            marker = _NOT_TESTED.search(before)
            promised: tuple[str, ...] = ()
            if i + 1 < len(fences) and _OUTPUT.fullmatch(text[m.end() : fences[i + 1].start()].strip()):
                promised = tuple(line.strip() for line in fences[i + 1].group(2).splitlines() if line.strip())
            found.append(Block(doc, text[: m.start()].count("\n") + 1, lang, m.group(2),
                               marker.group(1) if marker else None, promised))  # fmt: skip
    return found


BLOCKS = blocks()


@pytest.fixture(scope="module")
def engine_url() -> Iterator[str]:
    """The base URL (``http://127.0.0.1:PORT``) of a local engine served from a thread."""
    from aoai_realtime.engine.brain.rules import RulesBrain
    from aoai_realtime.engine.engine import Engine, EngineConfig
    from aoai_realtime.testing.engine import load_test_speech, serve_engine

    found: list[str] = []
    ready, stop = threading.Event(), threading.Event()

    async def serve() -> None:
        try:
            engine = Engine(EngineConfig(api_key=KEY, brain=RulesBrain, speech=load_test_speech("fake")))
            async with serve_engine(engine) as url:
                found.append(url)
                ready.set()
                await asyncio.to_thread(stop.wait)
        finally:
            ready.set()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(30) and found, "the engine did not start"
    yield found[0]
    stop.set()
    thread.join(10)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding question.wav: "What is the weather in Paris" in the fake speech's tone voice."""
    from aoai_realtime.apps.talk import write_wav
    from aoai_realtime.engine.speech import ToneTts

    where = tmp_path_factory.mktemp("docs")
    pcm, _ = ToneTts().synthesize_with_timings("What is the weather in Paris")
    write_wav(where / "question.wav", pcm)
    return where


def _env(engine_url: str) -> dict[str, str]:
    env = dict(os.environ, AOAI_ENGINE_API_KEY=KEY, PYTHONUNBUFFERED="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(args: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


def _console(code: str) -> tuple[str, list[str]]:
    """A console block's commands (one script) and the output lines it promises."""
    commands, promised = [], []
    for line in code.splitlines():
        if line.startswith("$ "):
            commands.append(line[2:])
        elif line.strip():
            promised.append(line.strip())
    return "\n".join(commands), promised


def _promised(line: str, output: str) -> bool:
    """``line`` appears in ``output``; ``...`` in it stands for anything."""
    parts = [re.escape(p.strip()) for p in line.split("...")]
    return re.search(r".*?".join(parts), output) is not None


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_doc_block(block: Block, engine_url: str, scratch: Path) -> None:
    if block.skip:
        pytest.skip(f"not-tested: {block.skip}")
    code = block.code.replace(DOC_ENGINE, engine_url.removeprefix("http://"))
    if block.lang == "json":
        json.loads(code)
        return
    if block.lang == "yaml":
        yaml.safe_load(code)
        return
    env = _env(engine_url)
    if block.lang == "python":
        script = scratch / f"block_{block.doc.stem}_{block.line}.py"
        script.write_text(code, encoding="utf-8")
        done = _run([sys.executable, "-c", _RUNNER, str(script)], cwd=scratch, env=env)
    else:
        promised = list(block.promised)
        if block.lang == "console":
            code, shown = _console(code)
            promised += shown
        done = _run(["bash", "-e", "-o", "pipefail", "-c", code], cwd=ROOT, env=env)
    if block.lang == "python":
        promised = list(block.promised)
    missing = [line for line in promised if not _promised(line, done.stdout + done.stderr)]
    assert not missing, f"{block.id}: promised output not seen: {missing}\n{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, f"{block.id} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def test_every_skipped_block_says_why() -> None:
    for block in BLOCKS:
        assert block.skip is None or len(block.skip) > 10, block.id

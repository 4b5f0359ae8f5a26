"""``bench memory`` on a tiny LoCoMo-format directory made here (hash embedder: no model, seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from aoai_realtime.bench.memory import bench_memory, register

pytestmark = pytest.mark.integration


def make_locomo(directory: Path) -> None:
    turns = [
        ("Ann", "I adopted a greyhound called Pepper from the shelter."),
        ("Bob", "Pepper! What a name. I started a pottery class in Porto."),
        ("Ann", "My sister Lena visits us in October."),
        ("Bob", "I ran the Porto marathon last spring."),
    ]
    conv = {
        "speaker_a": "Ann",
        "speaker_b": "Bob",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [{"speaker": s, "dia_id": f"D1:{i + 1}", "text": t} for i, (s, t) in enumerate(turns[:2])],
        "session_2_date_time": "2:00 pm on 9 June, 2023",
        "session_2": [{"speaker": s, "dia_id": f"D2:{i + 1}", "text": t} for i, (s, t) in enumerate(turns[2:])],
        "qa": [
            {"question": "What is the name of Ann's greyhound?", "evidence": ["D1:1"], "category": 4},
            {"question": "Where did Bob run a marathon?", "evidence": ["D2:2"], "category": 2},
            {"question": "Who visits in October and which class did Bob start?", "evidence": ["D2:1", "D1:2"],
             "category": 1},
            {"question": "Unanswerable?", "evidence": [], "category": 5},
        ],
    }  # fmt: skip
    (directory / "conv-x.json").write_text(json.dumps(conv))


def run(tmp_path: Path, *args: str) -> dict[str, object]:
    app = typer.Typer()
    app.command()(bench_memory)
    result = CliRunner().invoke(
        app, ["--locomo", str(tmp_path / "data"), "--embedder", "hash", "--cache-dir", str(tmp_path / "c"), *args]
    )
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_json_report_has_the_issue_shape(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    make_locomo(tmp_path / "data")
    report = run(tmp_path, "--k", "1", "3", "--json", "--no-latency")
    assert report["questions"] == 3
    methods = report["methods"]
    assert isinstance(methods, dict) and set(methods) == {"bm25", "dense", "hybrid"}
    for res in methods.values():
        assert set(res) == {"recall@1", "recall@3"}
        assert set(res["recall@3"]) == {"overall", "1", "2", "3", "4"}
        assert all(0.0 <= v <= 1.0 for v in res["recall@3"].values())
    # The single-hop question names a rare word of its evidence turn: BM25 finds it first.
    assert methods["bm25"]["recall@1"]["4"] == 1.0
    assert methods["hybrid"]["recall@3"]["overall"] > 0.5
    assert "latency" not in report


def test_latency_rows_for_small_sizes(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    make_locomo(tmp_path / "data")
    report = run(tmp_path, "--json", "--sizes", "60,120", "--backends", "sqlite", "--queries", "3")
    rows = report["latency"]
    assert isinstance(rows, list)
    assert {(r["size"], r["method"]) for r in rows} == {(s, m) for s in (60, 120) for m in ("bm25", "dense", "hybrid")}
    assert all(r["complete"] and r["p95_ms"] >= r["p50_ms"] > 0 for r in rows)


def test_empty_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    app = typer.Typer()
    app.command()(bench_memory)
    result = CliRunner().invoke(app, ["--locomo", str(tmp_path / "data"), "--embedder", "hash", "--no-latency"])
    assert result.exit_code == 2
    assert "no LoCoMo-format conversation" in result.output


def test_register_adds_the_command_to_bench() -> None:
    bench_app = typer.Typer()
    register(bench_app)
    assert [c.name for c in bench_app.registered_commands] == ["memory"]


def test_splits_report_tune_and_report_conversations_apart(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    make_locomo(tmp_path / "data")
    conv = json.loads((tmp_path / "data" / "conv-x.json").read_text())
    conv["qa"] = conv["qa"][:1]  # one question only: the splits must count differently
    (tmp_path / "data" / "conv-y.json").write_text(json.dumps(conv))
    report = run(tmp_path, "--json", "--no-latency", "--tune", "conv-y")
    splits = report["splits"]
    assert isinstance(splits, dict)
    assert splits["tune"]["conversations"] == ["conv-y"] and splits["tune"]["questions"] == 1
    assert splits["report"]["conversations"] == ["conv-x"] and splits["report"]["questions"] == 3
    assert report["questions"] == 4
    assert set(splits["report"]["methods"]) == {"bm25", "dense", "hybrid"}


async def test_progress_steps_reach_their_totals(tmp_path: Path) -> None:
    from aoai_realtime.bench.memory_recall import evaluate_locomo
    from aoai_realtime.memory import HashEmbedder, SQLiteStore

    (tmp_path / "data").mkdir()
    make_locomo(tmp_path / "data")
    seen: dict[str, tuple[int, int]] = {}
    store = await SQLiteStore.open(tmp_path / "m.db", dim=64)
    try:
        await evaluate_locomo(tmp_path / "data", store=store, embedder=HashEmbedder(64),
                              step=lambda phase, done, total: seen.__setitem__(phase, (done, total)))  # fmt: skip
    finally:
        await store.close()
    assert seen == {"index": (4, 4), "query": (9, 9)}  # 4 turns; 3 questions x 3 methods


def test_unknown_graph_reader_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    make_locomo(tmp_path / "data")
    app = typer.Typer()
    app.command()(bench_memory)
    result = CliRunner().invoke(app, ["--locomo", str(tmp_path / "data"), "--graph", "regex", "--no-latency"])
    assert result.exit_code == 2
    assert "use spacy, names or llm" in result.output

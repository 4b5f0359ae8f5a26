"""LoCoMo evidence recall: index every turn of each conversation, ask its questions, count evidence found.

Used by ``aoai-realtime bench memory`` and ``bench/bench_memory.py``. Each conversation is indexed in its own
scope (owner = conversation name), so questions only see their own conversation, as an agent's memory would.
Recall@k of a question is the share of its evidence turns among the top k; the figure reported is the mean over
questions of categories 1-4 that have evidence (category 5 is adversarial: it has no answer to find).

Honest figures: the conversations are split by id, before any result was seen, into a *tune* split (the
defaults were chosen on it) and a *report* split (only reported on). :data:`TUNE_CONVERSATIONS` names the tune
split; every other conversation of the directory is in the report split.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

from ..errors import get_logger
from ..memory.embeddings import EmbeddingProvider, embed_queries
from ..memory.indexing import TranscriptTurn, index_transcript
from ..memory.retrieval import HybridRetriever, RetrievalConfig
from ..memory.store import MemoryStore
from ..memory.types import InvalidChunkError, Scope
from .memory_locomo import Conversation, load_locomo

__all__ = [
    "TUNE_CONVERSATIONS",
    "RecallReport",
    "Step",
    "default_methods",
    "evaluate_locomo",
    "index_conversation",
    "tune_split_dir",
]

_log = get_logger(__name__)
CATEGORIES = (1, 2, 3, 4)
# The tune split: the three lowest conversation ids of shared/data/locomo (chosen by id before any figure).
TUNE_CONVERSATIONS: frozenset[str] = frozenset({"conv-26", "conv-30", "conv-41"})


def tune_split_dir(locomo: Path, into: Path) -> Path:
    """A folder ``into/tune`` holding only the tune split's conversations of ``locomo`` (symlinks), for the tuning
    scripts, which must never read the report split."""
    only = into / "tune"
    only.mkdir()
    for name in sorted(TUNE_CONVERSATIONS):
        (only / f"{name}.json").symlink_to((locomo / f"{name}.json").resolve())
    return only
SPLITS = ("all", "tune", "report")

Step = Callable[[str, int, int], None]
"""Progress callback: ``(phase, done, total)``; phases ``index`` (turns) and ``query`` (questions)."""

_Sums = dict[str, dict[str, dict[int, dict[str, float]]]]  # split -> method -> k -> category -> summed recall


@dataclasses.dataclass(slots=True)
class RecallReport:
    """Recall per method, per k, per category (``"overall"`` and ``"1"``..``"4"``), for all conversations
    (``methods``) and per split (``splits``: ``tune`` and ``report``, each with its methods and counts)."""

    methods: dict[str, dict[str, dict[str, float]]]
    questions: int
    conversations: int
    turns: int
    index_seconds: float
    query_seconds: dict[str, float]
    splits: dict[str, dict[str, object]] = dataclasses.field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {
            "methods": self.methods,
            "questions": self.questions,
            "conversations": self.conversations,
            "turns": self.turns,
            "index_seconds": round(self.index_seconds, 3),
            "query_seconds": {k: round(v, 3) for k, v in self.query_seconds.items()},
            "splits": self.splits,
        }


def default_methods() -> dict[str, RetrievalConfig]:
    """The three methods the benchmark reports: BM25 only, dense only, and the default hybrid."""
    return {"bm25": RetrievalConfig.only("bm25"), "dense": RetrievalConfig.only("dense"), "hybrid": RetrievalConfig()}


async def index_conversation(
    store: MemoryStore,
    embedder: EmbeddingProvider,
    conv: Conversation,
    *,
    step: Callable[[int], None] | None = None,
    **index_options: object,
) -> dict[int, str]:
    """Index a conversation's turns, one session at a time; return chunk id -> ``dia_id``. ``step(n)`` is called
    with the number of turns indexed after each session; ``index_options`` go to
    :func:`~aoai_realtime.memory.indexing.index_transcript`."""
    by_session: dict[int, list[TranscriptTurn]] = defaultdict(list)
    for t in conv.turns:
        by_session[t.session].append(
            TranscriptTurn(speaker=t.speaker, text=t.full_text, ts=t.ts, ref=t.dia_id, meta={"date": t.date_text})
        )
    refs: dict[int, str] = {}
    for session, turns in sorted(by_session.items()):
        ids = await index_transcript(
            store, embedder, owner=conv.name, session_id=f"session_{session}", turns=turns, source="locomo",
            **index_options,  # type: ignore[arg-type]
        )  # fmt: skip
        refs.update({cid: t.ref for cid, t in zip(ids, turns, strict=True)})
        if step:
            step(len(turns))
    return refs


def _questions(conv: Conversation) -> list[tuple[str, tuple[str, ...], int]]:
    return [(q.question, q.evidence, q.category) for q in conv.questions if q.category in CATEGORIES and q.evidence]


async def evaluate_locomo(
    directory: Path,
    *,
    store: MemoryStore,
    embedder: EmbeddingProvider,
    methods: Mapping[str, RetrievalConfig] | None = None,
    ks: Sequence[int] = (5, 10),
    tune: Collection[str] = TUNE_CONVERSATIONS,
    step: Step | None = None,
    retriever: HybridRetriever | None = None,
    index_options: Mapping[str, object] | None = None,
) -> RecallReport:
    """Index every conversation of ``directory`` into ``store`` and measure evidence recall for ``methods``.

    ``tune`` names the conversations of the tune split (the rest are the report split). ``retriever`` replaces
    the default ``HybridRetriever(store, embedder)`` (e.g. one with a reranker). ``store`` should be empty
    (conversations are scoped by name, so re-using a store double-indexes them). Raises
    :class:`InvalidChunkError` when the directory holds no LoCoMo conversation.
    """
    methods = dict(methods or default_methods())
    ks = sorted(set(ks))
    kmax = max(ks)
    convs = list(load_locomo(directory))
    if not convs:
        raise InvalidChunkError(f"{directory} holds no LoCoMo-format conversation (*.json with speaker_a, qa)")
    total_turns = sum(len(c.turns) for c in convs)
    total_questions = sum(len(_questions(c)) for c in convs) * len(methods)
    sums: _Sums = {s: {m: {k: defaultdict(float) for k in ks} for m in methods} for s in SPLITS}
    counts: dict[str, dict[str, int]] = {s: defaultdict(int) for s in SPLITS}
    names: dict[str, list[str]] = {s: [] for s in SPLITS}
    query_seconds: dict[str, float] = defaultdict(float)
    index_seconds = 0.0
    done_turns = done_q = 0
    retriever = retriever or HybridRetriever(store, embedder)
    for conv in convs:
        split = "tune" if conv.name in tune else "report"
        names["all"].append(conv.name)
        names[split].append(conv.name)
        t0 = time.perf_counter()

        def advance(n: int) -> None:
            nonlocal done_turns
            done_turns += n
            if step:
                step("index", done_turns, total_turns)

        refs = await index_conversation(store, embedder, conv, step=advance, **dict(index_options or {}))
        index_seconds += time.perf_counter() - t0
        questions = _questions(conv)
        _log.info("%s (%s split): %d turns, %d questions", conv.name, split, len(conv.turns), len(questions))
        if not questions:
            continue
        vectors = await embed_queries(embedder, [q for q, _, _ in questions])
        scope = Scope(owner=conv.name)
        for qi, (question, evidence_ids, category) in enumerate(questions):
            cat = str(category)
            for s in ("all", split):
                counts[s][cat] += 1
                counts[s]["overall"] += 1
            evidence = set(evidence_ids)
            for name, cfg in methods.items():
                t0 = time.perf_counter()
                hits = await retriever.retrieve(question, scope, kmax, query_vector=vectors[qi], config=cfg)
                query_seconds[name] += time.perf_counter() - t0
                found = [refs.get(h.chunk.id, "") for h in hits]
                for k in ks:
                    r = len(evidence & set(found[:k])) / len(evidence)
                    for s in ("all", split):
                        sums[s][name][k][cat] += r
                        sums[s][name][k]["overall"] += r
                done_q += 1
                if step:
                    step("query", done_q, total_questions)
    table = {s: _table(sums[s], counts[s], ks) for s in SPLITS}
    return RecallReport(
        methods=table["all"],
        questions=counts["all"]["overall"],
        conversations=len(convs),
        turns=total_turns,
        index_seconds=index_seconds,
        query_seconds=dict(query_seconds),
        splits={
            s: {"conversations": names[s], "questions": counts[s]["overall"], "methods": table[s]}
            for s in ("tune", "report")
        },
    )


def _table(
    sums: dict[str, dict[int, dict[str, float]]], counts: Mapping[str, int], ks: Sequence[int]
) -> dict[str, dict[str, dict[str, float]]]:
    keys = ["overall", *(str(c) for c in CATEGORIES)]
    return {
        name: {
            f"recall@{k}": {key: round(by_k[k][key] / counts[key], 4) if counts.get(key) else 0.0 for key in keys}
            for k in ks
        }
        for name, by_k in sums.items()
    }

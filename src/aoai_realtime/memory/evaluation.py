"""LoCoMo evidence recall: index every turn of each conversation, ask its questions, count evidence found.

Used by ``aoai-realtime bench memory`` and ``bench/bench_memory.py``. Each conversation is indexed in its own
scope (owner = conversation name), so questions only see their own conversation, as an agent's memory would.
Recall@k of a question is the share of its evidence turns among the top k; the figure reported is the mean over
questions of categories 1-4 that have evidence (category 5 is adversarial: it has no answer to find).
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..errors import get_logger
from .embeddings import EmbeddingProvider
from .indexing import TranscriptTurn, index_transcript
from .locomo import Conversation, load_locomo
from .retrieval import HybridRetriever, RetrievalConfig
from .store import MemoryStore
from .types import InvalidChunkError, Scope

__all__ = ["RecallReport", "default_methods", "evaluate_locomo", "index_conversation"]

_log = get_logger(__name__)
CATEGORIES = (1, 2, 3, 4)


@dataclasses.dataclass(slots=True)
class RecallReport:
    """Recall per method, per k, per category (``"overall"`` and ``"1"``..``"4"``)."""

    methods: dict[str, dict[str, dict[str, float]]]
    questions: int
    conversations: int
    turns: int
    index_seconds: float
    query_seconds: dict[str, float]

    def as_json(self) -> dict[str, object]:
        return {
            "methods": self.methods,
            "questions": self.questions,
            "conversations": self.conversations,
            "turns": self.turns,
            "index_seconds": round(self.index_seconds, 3),
            "query_seconds": {k: round(v, 3) for k, v in self.query_seconds.items()},
        }


def default_methods() -> dict[str, RetrievalConfig]:
    """The three methods the benchmark reports: BM25 only, dense only, and the default hybrid."""
    return {"bm25": RetrievalConfig.only("bm25"), "dense": RetrievalConfig.only("dense"), "hybrid": RetrievalConfig()}


async def index_conversation(store: MemoryStore, embedder: EmbeddingProvider, conv: Conversation) -> dict[int, str]:
    """Index a conversation's turns, one session at a time; return chunk id -> ``dia_id``."""
    by_session: dict[int, list[TranscriptTurn]] = defaultdict(list)
    for t in conv.turns:
        by_session[t.session].append(
            TranscriptTurn(speaker=t.speaker, text=t.full_text, ts=t.ts, ref=t.dia_id, meta={"date": t.date_text})
        )
    refs: dict[int, str] = {}
    for session, turns in sorted(by_session.items()):
        ids = await index_transcript(
            store, embedder, owner=conv.name, session_id=f"session_{session}", turns=turns, source="locomo"
        )
        refs.update({cid: t.ref for cid, t in zip(ids, turns, strict=True)})
    return refs


async def evaluate_locomo(
    directory: Path,
    *,
    store: MemoryStore,
    embedder: EmbeddingProvider,
    methods: Mapping[str, RetrievalConfig] | None = None,
    ks: Sequence[int] = (5, 10),
    progress: Callable[[str], None] | None = None,
) -> RecallReport:
    """Index every conversation of ``directory`` into ``store`` and measure evidence recall for ``methods``.

    ``store`` should be empty (conversations are scoped by name, so re-using a store double-indexes them).
    Raises :class:`InvalidChunkError` when the directory holds no LoCoMo conversation.
    """
    methods = dict(methods or default_methods())
    ks = sorted(set(ks))
    kmax = max(ks)
    sums: dict[str, dict[int, dict[str, float]]] = {m: {k: defaultdict(float) for k in ks} for m in methods}
    counts: dict[str, int] = defaultdict(int)
    query_seconds: dict[str, float] = defaultdict(float)
    index_seconds = 0.0
    n_conv = n_turns = 0
    for conv in load_locomo(directory):
        n_conv += 1
        n_turns += len(conv.turns)
        t0 = time.perf_counter()
        refs = await index_conversation(store, embedder, conv)
        index_seconds += time.perf_counter() - t0
        questions = [q for q in conv.questions if q.category in CATEGORIES and q.evidence]
        if progress:
            progress(f"{conv.name}: {len(conv.turns)} turns, {len(questions)} questions")
        if not questions:
            continue
        vectors = await embedder.embed([q.question for q in questions])
        retriever = HybridRetriever(store, embedder)
        scope = Scope(owner=conv.name)
        for qi, q in enumerate(questions):
            cat = str(q.category)
            counts[cat] += 1
            counts["overall"] += 1
            evidence = set(q.evidence)
            for name, cfg in methods.items():
                t0 = time.perf_counter()
                hits = await retriever.retrieve(q.question, scope, kmax, query_vector=vectors[qi], config=cfg)
                query_seconds[name] += time.perf_counter() - t0
                found = [refs.get(h.chunk.id, "") for h in hits]
                for k in ks:
                    r = len(evidence & set(found[:k])) / len(evidence)
                    sums[name][k][cat] += r
                    sums[name][k]["overall"] += r
    if n_conv == 0:
        raise InvalidChunkError(f"{directory} holds no LoCoMo-format conversation (*.json with speaker_a, qa)")
    keys = ["overall", *(str(c) for c in CATEGORIES)]
    report = {
        name: {
            f"recall@{k}": {key: round(sums[name][k][key] / counts[key], 4) if counts[key] else 0.0 for key in keys}
            for k in ks
        }
        for name in methods
    }
    return RecallReport(
        methods=report,
        questions=counts["overall"],
        conversations=n_conv,
        turns=n_turns,
        index_seconds=index_seconds,
        query_seconds=dict(query_seconds),
    )

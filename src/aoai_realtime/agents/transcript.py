"""The conversation as the user experienced it: ordered by conversation item, assistant words shown as heard.

Rules (reference 4.2, 4.4 and section 6 items 1, 3, 8):

- Entries are keyed by item id and ordered like the conversation: an item goes after its
  ``previous_item_id``. A user transcription that arrives late (after the assistant answered) fills its own
  entry in place; it never appends a duplicate.
- Assistant text (from ``response.output_audio_transcript.*``, beta ``response.audio_transcript.*`` is mapped
  by the decoder) is held back and revealed in step with playback: each word at its share of the item's audio
  (characters before the word / all characters x audio length). Before the audio length is known, a speaking
  rate prior is used. When the audio ends the rest is flushed; at barge-in it is cut to the words heard.
- Text-only responses (``response.output_text.*``) are shown as they stream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = ["Transcript", "TranscriptEntry", "word_starts_ms"]

Role = Literal["user", "assistant", "system"]

_WORD = re.compile(r"\S+\s*")
# ~14 characters a second: a typical speaking rate, used only until the item's audio length is known.
DEFAULT_MS_PER_CHAR = 70.0
# A pause at a sentence end lasts about as long as this many characters.
SENTENCE_PAUSE_CHARS = 4.0
# Voices pause at a comma, colon or semicolon too (piper: 3-5 characters' time, measured by bench agents).
CLAUSE_PAUSE_CHARS = 3.0
_SENTENCE_END = re.compile(r"[.?!][\"')]*\s+$")
_CLAUSE_END = re.compile(r"[,;:][\"')]*\s+$")
_CLAUSE_MARK = re.compile(r"[,;:][\"')]*\s")


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    """One item of the conversation as shown to the user.

    ``text`` is what the user has heard (assistant) or said (user). ``final`` means it will not change again;
    ``interrupted`` means the assistant was cut off by the user and ``text`` holds only the words heard.
    """

    item_id: str
    role: Role
    text: str
    final: bool = False
    interrupted: bool = False


@dataclass(slots=True)
class _Entry:
    item_id: str
    role: Role
    full: str = ""  # everything the service sent (assistant: may be ahead of the audio)
    shown_words: int = 0
    text_done: bool = False
    audio: bool = False  # the item carries audio: reveal by playback
    audio_ms: float = 0.0  # audio received so far
    audio_done: bool = False
    flushed: bool = False
    interrupted: bool = False
    provisional: bool = False  # cut at an estimate; the service's position is still to come
    heard: str | None = None  # set when cut or flushed
    user_text: str = ""
    user_final: bool = False
    placed: bool = False  # announced by the conversation (else parked at the end until it is)
    # (text_start, audio_start_ms): the service sends a piece of text, then the audio speaking it
    anchors: list[tuple[int, float]] = field(default_factory=list)
    anchored_chars: int = 0
    onsets: OnsetDetector | None = None
    cache_key: tuple[object, ...] = ()
    cache: list[float] = field(default_factory=list)


def _cumulative_weights(text: str, sentence_pause: float, clause_pause: float = CLAUSE_PAUSE_CHARS) -> list[float]:
    # cw[i] = weight of text[:i]: one per character, plus a pause on the first space after a sentence or
    # clause end.
    cw = [0.0] * (len(text) + 1)
    for i, ch in enumerate(text):
        weight = 1.0
        if ch.isspace() and i > 0 and not text[i - 1].isspace():
            if _SENTENCE_END.search(text[: i + 1]):
                weight += sentence_pause
            elif _CLAUSE_END.search(text[: i + 1]):
                weight += clause_pause
        cw[i + 1] = cw[i] + weight
    return cw


def _segment_starts(
    text: str,
    segments: list[tuple[int, float, float]],
    *,
    sentence_pause: float = SENTENCE_PAUSE_CHARS,
    clause_pause: float = CLAUSE_PAUSE_CHARS,
) -> list[float]:
    """Word starts when ``segments`` = ``[(text_start, audio_start_ms, audio_end_ms), ...]`` says which audio
    speaks which text: inside a segment each character gets an equal share (sentence ends more)."""
    tokens = [m.start() for m in _WORD.finditer(text)]
    if not tokens:
        return []
    cw = _cumulative_weights(text, sentence_pause, clause_pause)
    starts: list[float] = []
    index = 0
    for c in tokens:
        while index + 1 < len(segments) and segments[index + 1][0] <= c:
            index += 1
        t0, a0, a1 = segments[index]
        t_next = segments[index + 1][0] if index + 1 < len(segments) else len(text)
        # A segment's own text, without the whitespace around it: its first word starts with its audio.
        piece = text[t0:t_next]
        t0 += len(piece) - len(piece.lstrip())
        t1 = t0 + len(piece.strip())
        span = cw[max(t1, t0)] - cw[t0]
        share = (cw[c] - cw[t0]) / span if span > 0 else 0.0
        starts.append(a0 + min(1.0, share) * (a1 - a0))
    return starts


def word_starts_ms(text: str, total_ms: float, *, sentence_pause: float = SENTENCE_PAUSE_CHARS) -> list[float]:
    """Start time of each word of ``text`` if the whole text takes ``total_ms``: every character gets an equal
    share, and a sentence end (``.?!`` followed by more text) ``sentence_pause`` characters more, since speech
    pauses there. The fallback word timing when nothing finer is known."""
    return _segment_starts(text, [(0, 0.0, total_ms)], sentence_pause=sentence_pause)


class OnsetDetector:
    """Finds speech onsets in pcm16 24 kHz as it streams: sound after at least ``pause_ms`` of quiet.

    Words after a pause start there, exactly; the estimated word starts are snapped to them
    (:func:`snap_to_onsets`). ``threshold`` is the peak level (of 32768) below which a 5 ms window is quiet.
    """

    WINDOW = 120  # samples: 5 ms

    def __init__(self, *, start_ms: float = 0.0, pause_ms: float = 40.0, threshold: int = 400) -> None:
        self.onsets: list[float] = []
        self.sound_ends: list[float] = []  # sound_ends[i]: where the sound that began at onsets[i] ends so far
        self._pos = int(start_ms * 24)  # samples since the start of the item
        self._quiet = pause_ms * 24  # pretend the item starts after a pause
        self._pause = pause_ms * 24
        self._threshold = threshold
        self._rest = b""

    def feed(self, pcm: bytes) -> None:
        data = self._rest + pcm
        usable = len(data) - len(data) % (2 * self.WINDOW)
        self._rest = data[usable:]
        if not usable:
            return
        windows = np.abs(np.frombuffer(data[:usable], dtype="<i2").astype(np.int32)).reshape(-1, self.WINDOW)
        loud = windows.max(axis=1) >= self._threshold
        for is_loud in loud.tolist():
            if is_loud:
                if self._quiet >= self._pause:
                    self.onsets.append(self._pos / 24.0)
                    self.sound_ends.append(self._pos / 24.0)
                self._quiet = 0
                self.sound_ends[-1] = (self._pos + self.WINDOW) / 24.0
            else:
                self._quiet += self.WINDOW
            self._pos += self.WINDOW

    def sound_end(self, start_ms: float, end_ms: float) -> float | None:
        """Where the last sound heard between ``start_ms`` and ``end_ms`` ends (``None``: only quiet there).
        A voice's audio for a piece of text usually ends in a pause; its words lie before that pause."""
        for onset, end in zip(reversed(self.onsets), reversed(self.sound_ends), strict=True):
            if onset < end_ms and end > start_ms:
                return min(end, end_ms)
        return None


def fit_rate(estimates: list[float], onsets: list[float], *, origin: float = 0.0) -> list[float]:
    """While the audio length is unknown, the estimates rest on an assumed speaking rate. Stretch them (about
    ``origin``, the start of the text still arriving) by the factor that best lines the words up with the
    onsets heard so far, so a fast or slow voice is followed. Only the words from ``origin`` on move, so only
    they and the onsets from ``origin`` on are weighed (the cost stays that of the last piece, not the item)."""
    first = next((i for i, e in enumerate(estimates) if e >= origin), len(estimates))
    near = [o for o in onsets if o >= origin]
    if first == len(estimates) or not near:
        return estimates
    tail = estimates[first:]
    best, best_cost = tail, _alignment_cost(tail, near)
    for factor in np.linspace(0.4, 1.6, 25).tolist():
        scaled = [origin + (e - origin) * factor for e in tail]
        cost = _alignment_cost(scaled, near)
        if cost < best_cost - 1e-9:
            best, best_cost = scaled, cost
    return estimates[:first] + best


def _alignment_cost(estimates: list[float], onsets: list[float]) -> float:
    horizon = onsets[-1] + 250.0  # words beyond the audio heard so far cannot be judged yet
    considered = [e for e in estimates if e <= horizon]
    # An onset that no word explains costs as much as a word without an onset. Cheaper, and stretching the
    # words until fewer of them fall within the horizon always looked best: with the whole text known ahead of
    # its audio (WebRTC), a cut at 4 s kept 9 of the 21 words heard.
    return _align(considered, onsets, skip_onset=125.0)[0]


def snap_to_onsets(estimates: list[float], onsets: list[float], *, reach_ms: float = 250.0) -> list[float]:
    """Move estimated word starts onto detected onsets: the monotonic matching of words to onsets with the
    least total distance (a word may match no onset and keep its estimate; an onset may match no word).
    Only pairs closer than ``reach_ms`` match."""
    if not onsets or not estimates:
        return list(estimates)
    return _align(estimates, onsets, reach_ms=reach_ms)[1]


def _align(
    estimates: list[float], onsets: list[float], *, reach_ms: float = 250.0, skip_onset: float = 20.0
) -> tuple[float, list[float]]:
    n, m = len(estimates), len(onsets)
    skip_word = reach_ms * 0.5
    inf = float("inf")
    # cost[i][j]: best cost aligning the first i words with the first j onsets
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    move = [[0] * (m + 1) for _ in range(n + 1)]
    cost[0][0] = 0.0
    for i in range(n + 1):
        for j in range(m + 1):
            here = cost[i][j]
            if here == inf:
                continue
            if i < n and here + skip_word < cost[i + 1][j]:
                cost[i + 1][j], move[i + 1][j] = here + skip_word, 1
            if j < m and here + skip_onset < cost[i][j + 1]:
                cost[i][j + 1], move[i][j + 1] = here + skip_onset, 2
            if i < n and j < m:
                gap = abs(estimates[i] - onsets[j])
                if gap < reach_ms and here + gap < cost[i + 1][j + 1]:
                    cost[i + 1][j + 1], move[i + 1][j + 1] = here + gap, 3
    result = list(estimates)
    i, j = n, m
    while i or j:
        step = move[i][j]
        if step == 3:
            result[i - 1] = onsets[j - 1]
            i, j = i - 1, j - 1
        elif step == 1:
            i -= 1
        else:
            j -= 1
    return cost[n][m], result


class Transcript:
    """Collects transcript events; :meth:`entries` is the current view. No I/O, no clock.

    The owner feeds it: :meth:`add_item` for every item the conversation gains, the user and assistant text
    events, :meth:`audio_received` / :meth:`audio_done` for assistant audio, and :meth:`played` with the
    playback position. Each mutator returns ``True`` when :meth:`entries` changed.
    """

    def __init__(self, *, ms_per_char: float = DEFAULT_MS_PER_CHAR) -> None:
        self._order: list[str] = []
        self._entries: dict[str, _Entry] = {}
        self._ms_per_char = ms_per_char

    # -- items ---------------------------------------------------------------------------------------------

    def add_item(self, item_id: str, role: Role, previous_item_id: str | None = None) -> bool:
        """An item joined the conversation after ``previous_item_id`` (``None``: at the end; ``"root"``: first).

        Idempotent: an item already known keeps its text and only moves if its position was unknown.
        """
        entry = self._entries.get(item_id)
        if entry is None:
            entry = _Entry(item_id=item_id, role=role)
            self._entries[item_id] = entry
        elif entry.placed:
            return False
        entry.role = role
        entry.placed = True
        self._place(item_id, previous_item_id)
        return True

    def _place(self, item_id: str, previous_item_id: str | None) -> None:
        if item_id in self._order:
            self._order.remove(item_id)
        if previous_item_id == "root":
            self._order.insert(0, item_id)
        elif previous_item_id is not None and previous_item_id in self._order:
            self._order.insert(self._order.index(previous_item_id) + 1, item_id)
        else:
            self._order.append(item_id)

    def remove_item(self, item_id: str) -> bool:
        """``conversation.item.deleted``."""
        if item_id not in self._entries:
            return False
        del self._entries[item_id]
        if item_id in self._order:
            self._order.remove(item_id)
        return True

    def _get(self, item_id: str, role: Role) -> _Entry:
        entry = self._entries.get(item_id)
        if entry is None:
            # Text for an item not announced yet: keep it, parked at the end until the item is announced.
            entry = _Entry(item_id=item_id, role=role)
            self._entries[item_id] = entry
            self._order.append(item_id)
        return entry

    # -- user ----------------------------------------------------------------------------------------------

    def user_delta(self, item_id: str, delta: str) -> bool:
        entry = self._get(item_id, "user")
        if entry.user_final or not delta:
            return False
        entry.user_text += delta
        return True

    def user_completed(self, item_id: str, transcript: str) -> bool:
        """The final transcription of a user item: replaces any deltas, in the item's own place."""
        entry = self._get(item_id, "user")
        changed = entry.user_text != transcript or not entry.user_final
        entry.user_text = transcript
        entry.user_final = True
        return changed

    def user_text(self, item_id: str, text: str) -> bool:
        """A user item with known text (``input_text`` content): final at once."""
        return self.user_completed(item_id, text)

    # -- assistant -----------------------------------------------------------------------------------------

    def assistant_delta(self, item_id: str, delta: str, *, audio: bool) -> bool:
        """Text of an assistant item. ``audio=True`` for audio transcripts (held back until heard)."""
        entry = self._get(item_id, "assistant")
        if entry.interrupted or entry.text_done:
            return False
        entry.audio = entry.audio or audio
        entry.full += delta
        return not entry.audio

    def assistant_done(self, item_id: str, text: str, *, audio: bool) -> bool:
        entry = self._get(item_id, "assistant")
        if entry.interrupted:
            return False
        entry.audio = entry.audio or audio
        entry.full = text
        entry.text_done = True
        if entry.audio and entry.flushed:
            entry.heard = text
            return True
        return not entry.audio or entry.flushed

    def audio_received(self, item_id: str, ms: float, pcm: bytes | None = None, *, in_step: bool = True) -> None:
        """``ms`` more audio of the item arrived. Given the ``pcm`` itself, word onsets heard in it (speech
        after a pause) refine the word timing.

        ``in_step``: the text and the audio come in one ordered stream (WebSocket: a piece's text, then the audio
        speaking it), so text that arrived since the last audio is anchored where this audio starts. Pass
        ``False`` when they come by separate paths (WebRTC: text on the data channel, audio on the media track,
        each with its own delay): there the order of arrival says nothing about which audio speaks which text,
        and the timing rests on the speaking rate and the onsets alone."""
        entry = self._get(item_id, "assistant")
        if pcm is not None:
            if entry.onsets is None:
                entry.onsets = OnsetDetector(start_ms=entry.audio_ms)
            entry.onsets.feed(pcm)
        entry.audio = True
        if in_step and len(entry.full) > entry.anchored_chars:
            # Text arrived since the last audio: this audio speaks it (the service sends a sentence's text,
            # then its audio). Anchoring each piece keeps sentence pauses from skewing the word timing.
            entry.anchors.append((entry.anchored_chars, entry.audio_ms))
            entry.anchored_chars = len(entry.full)
        entry.audio_ms += ms

    def audio_done(self, item_id: str) -> None:
        self._get(item_id, "assistant").audio_done = True

    def _starts(self, entry: _Entry) -> list[float]:
        onsets = entry.onsets.onsets if entry.onsets is not None else []
        key = (len(entry.full), entry.audio_ms, entry.audio_done, entry.text_done, len(onsets))
        if key != entry.cache_key:
            entry.cache_key = key
            estimate = self._estimate(entry)
            if onsets and _CLAUSE_MARK.search(entry.full):
                # Voices pause at commas, or (tone speech, some voices) do not: with the audio at hand, the
                # timing whose words line up better with the speech onsets heard decides.
                without = self._estimate(entry, 0.0)
                if _align(without, onsets)[0] < _align(estimate, onsets)[0] - 1e-9:
                    estimate = without
            if onsets and not (entry.audio_done and entry.text_done) and not self._waiting(entry):
                estimate = fit_rate(estimate, onsets, origin=entry.anchors[-1][1] if entry.anchors else 0.0)
            entry.cache = snap_to_onsets(estimate, onsets)
        return entry.cache

    def _estimate(self, entry: _Entry, clause_pause: float = CLAUSE_PAUSE_CHARS) -> list[float]:
        anchors = entry.anchors or [(0, 0.0)]
        if anchors[0][0] != 0:
            anchors = [(0, 0.0), *anchors]
        final = entry.audio_done and entry.text_done
        waiting = self._waiting(entry)
        segments: list[tuple[int, float, float]] = []
        for i, (t0, a0) in enumerate(anchors):
            if i + 1 < len(anchors) or final or waiting:
                end = anchors[i + 1][1] if i + 1 < len(anchors) else entry.audio_ms
                # The piece's audio is all here: its words end where its sound ends, before any closing pause.
                sound_end = entry.onsets.sound_end(a0, end) if entry.onsets is not None else None
                segments.append((t0, a0, end if sound_end is None else sound_end))
                continue
            end = entry.audio_ms
            # The last piece may still be arriving: assume at least the prior speaking rate.
            end = max(end, a0 + len(entry.full[t0:].rstrip()) * self._ms_per_char)
            segments.append((t0, a0, end))
        if waiting:
            # Text whose audio has not come yet: it starts where the audio so far ends, at the prior rate.
            t0, a0 = entry.anchored_chars, entry.audio_ms
            segments.append((t0, a0, a0 + len(entry.full[t0:].strip()) * self._ms_per_char))
        return _segment_starts(entry.full, segments, clause_pause=clause_pause)

    @staticmethod
    def _waiting(entry: _Entry) -> bool:
        """In-step text (WebSocket) arrived after the last audio: the audio so far speaks the text before it, all
        of it (the next audio starts the new text), so that piece's length is known, not assumed."""
        return bool(entry.anchors) and len(entry.full) > entry.anchored_chars and not (
            entry.audio_done and entry.text_done
        )

    def played(self, item_id: str, played_ms: float) -> bool:
        """Playback of ``item_id`` reached ``played_ms``: reveal every word that has started."""
        entry = self._entries.get(item_id)
        if entry is None or not entry.audio or entry.interrupted or entry.flushed:
            return False
        count = sum(1 for start in self._starts(entry) if start <= played_ms)
        if count > entry.shown_words:
            entry.shown_words = count
            return True
        return False

    def flush(self, item_id: str) -> bool:
        """The item's audio finished playing: show all of its text."""
        entry = self._entries.get(item_id)
        if entry is None or entry.interrupted or entry.flushed:
            return False
        entry.flushed = True
        entry.heard = entry.full
        return True

    def cut(self, item_id: str, heard_ms: float, *, again: bool = False, provisional: bool = False) -> bool:
        """Barge-in: keep only the words that started within the first ``heard_ms`` of the audio.

        ``again=True`` re-cuts an item already cut, when a better position is known (the service's own
        ``conversation.item.truncated`` over WebRTC). ``provisional=True``: the position is an estimate and a
        better one will follow; the entry is not ``final`` until it is cut again or :meth:`confirm` says it stands."""
        entry = self._entries.get(item_id)
        if entry is None or (entry.interrupted and not again) or entry.role != "assistant":
            return False
        words = [m.group() for m in _WORD.finditer(entry.full)]
        starts = self._starts(entry)
        kept = [w for w, start in zip(words, starts, strict=True) if start < heard_ms] if heard_ms > 0 else []
        changed = entry.heard != "".join(kept).rstrip() or not entry.interrupted or entry.provisional != provisional
        entry.heard = "".join(kept).rstrip()
        entry.interrupted = True
        entry.provisional = provisional
        entry.shown_words = len(kept)
        return changed

    def confirm(self, item_id: str) -> bool:
        """A provisional cut stands (no better position will come): the entry is final."""
        entry = self._entries.get(item_id)
        if entry is None or not entry.provisional:
            return False
        entry.provisional = False
        return True

    # -- view ----------------------------------------------------------------------------------------------

    def _shown(self, entry: _Entry) -> str:
        if entry.role == "user":
            return entry.user_text
        if entry.heard is not None:
            return entry.heard
        if not entry.audio:
            return entry.full
        words = [m.group() for m in _WORD.finditer(entry.full)]
        return "".join(words[: entry.shown_words]).rstrip()

    def entry(self, item_id: str) -> TranscriptEntry | None:
        entry = self._entries.get(item_id)
        return None if entry is None else self._view(entry)

    def _view(self, entry: _Entry) -> TranscriptEntry:
        if entry.role == "user":
            final = entry.user_final
        else:
            final = (entry.interrupted and not entry.provisional) or (entry.flushed and entry.text_done) or (
                not entry.audio and entry.text_done
            )
        return TranscriptEntry(entry.item_id, entry.role, self._shown(entry), final, entry.interrupted)

    def entries(self, *, include_empty: bool = False) -> list[TranscriptEntry]:
        """The conversation in item order. Entries with no text yet are left out unless asked for."""
        views = [self._view(self._entries[item_id]) for item_id in self._order]
        return views if include_empty else [v for v in views if v.text]

    def full_text(self, item_id: str) -> str:
        """Everything the service sent for the item, heard or not (for summaries and debugging)."""
        entry = self._entries.get(item_id)
        if entry is None:
            return ""
        return entry.user_text if entry.role == "user" else entry.full

    def __len__(self) -> int:
        return len(self._order)

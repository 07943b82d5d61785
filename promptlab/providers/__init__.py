"""Providers and model ids.

A model id reads ``provider:model`` — ``local:gemma-3-270m``, ``anthropic:claude-3-5-sonnet-20241022``,
``openai:gpt-4o-mini-2024-07-18``. Bare hosted ids are recognised by their family prefix (``claude-`` is
Anthropic, ``gpt-``/``o1``/``o3``/``o4`` is OpenAI), so prompt files may pin the id exactly as the vendor
spells it. Hosted providers are imported only when used.

Calls of the OpenAI and Anthropic providers go through a process-wide rate limiter per endpoint and model: declare
your tier with ``OpenAIProvider(rate_limits=RateLimits(rpm=500, tpm=200_000))``, or let it learn the limits from the
response headers; ``limiter_stats()`` shows what each limiter knows. `ServerPool` serves one model from several
OpenAI-compatible servers (vLLM, llama.cpp server), spreading calls and taking failing servers out; each
completion's ``served_by`` names the server that answered.
"""

from .._face import declare

declare(__name__, globals(), {
    "Provider": "._base", "Request": "._base", "Completion": "._base", "Message": "._base",
    "OutputConstraint": "._base",
    "FakeProvider": "._fake", "OpenAIProvider": "._openai", "AnthropicProvider": "._anthropic",
    "LOCAL_MODEL_ID": "._local", "render_transcript": "._local",
    "LocalProvider": "._local",
    "make_provider": "._ids", "split_model_id": "._ids", "canonical_model_id": "._ids",
    "is_pinned": "._pinning", "pin_status": "._pinning",
    "RateLimits": "._ratelimit", "limiter_stats": "._ratelimit", "ServerPool": "._pool",
})

"""Providers and model ids.

A model id reads ``provider:model`` — ``local:gemma-3-270m``, ``anthropic:claude-3-5-sonnet-20241022``,
``openai:gpt-4o-mini-2024-07-18``. Bare hosted ids are recognised by their family prefix (``claude-`` is
Anthropic, ``gpt-``/``o1``/``o3``/``o4`` is OpenAI), so prompt files may pin the id exactly as the vendor
spells it. Hosted providers are imported only when used.
"""

from .._face import declare

declare(__name__, globals(), {
    "Provider": "._base", "Request": "._base", "Completion": "._base", "Message": "._base",
    "OutputConstraint": "._base",
    "FakeProvider": "._fake", "OpenAIProvider": "._openai", "AnthropicProvider": "._anthropic",
    "LOCAL_MODEL_ID": "._local", "render_transcript": "._local",
    "make_provider": "._ids", "split_model_id": "._ids", "canonical_model_id": "._ids",
    "is_pinned": "._pinning", "pin_status": "._pinning",
    "RateLimits": "._ratelimit", "limiter_stats": "._ratelimit", "ServerPool": "._pool",
})

"""Model ids: ``provider:model`` spelling, the provider of a bare id, and the provider instance for one."""

from __future__ import annotations

from importlib import import_module

from ..errors import ModelSpecError
from ._base import Provider

_HOSTED_PREFIXES = {"claude-": "anthropic", "gpt-": "openai", "o1": "openai", "o3": "openai", "o4": "openai",
                    "chatgpt-": "openai"}
_PROVIDER_CLASSES = {
    "local": ("promptlab.providers._local", "LocalProvider"),
    "openai": ("promptlab.providers._openai", "OpenAIProvider"),
    "anthropic": ("promptlab.providers._anthropic", "AnthropicProvider"),
}


def split_model_id(model_id: str) -> tuple[str, str]:
    """``"anthropic:claude-x"`` → ``("anthropic", "claude-x")``; bare hosted ids get their provider."""
    if not isinstance(model_id, str) or not model_id.strip():
        raise ModelSpecError(f"a model id must be a non-empty string, got {model_id!r}. "
                             "Example: 'local:gemma-3-270m' or 'anthropic:claude-3-5-sonnet-20241022'.")
    provider, sep, model = model_id.partition(":")
    if sep:
        return provider, model
    for prefix, name in _HOSTED_PREFIXES.items():
        if model_id.startswith(prefix):
            return name, model_id
    raise ModelSpecError(f"cannot tell the provider of model {model_id!r}. Write it as 'provider:model', "
                         f"with provider one of {sorted(_PROVIDER_CLASSES)} (or pass a Provider instance).")


def canonical_model_id(model_id: str) -> str:
    """The ``provider:model`` spelling of a model id."""
    provider, model = split_model_id(model_id)
    return f"{provider}:{model}"


def make_provider(model_id: str, **options) -> Provider:
    """A provider instance able to serve ``model_id`` (hosted providers read their key from the environment).

    A provider serves every model of its vendor; the model name travels in each `Request`.
    """
    provider, _ = split_model_id(model_id)
    if provider not in _PROVIDER_CLASSES:
        raise ModelSpecError(f"unknown provider {provider!r} in model id {model_id!r}. Known providers: "
                             f"{sorted(_PROVIDER_CLASSES)}; for scripted answers pass a FakeProvider instance.")
    module, cls = _PROVIDER_CLASSES[provider]
    return getattr(import_module(module), cls)(**options)

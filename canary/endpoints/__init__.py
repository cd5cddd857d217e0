"""Endpoint adapters: one transport-owning base client, and flavours that own only a wire format."""

from canary.endpoints.anthropic import AnthropicMessages
from canary.endpoints.base import (
    EndpointClient,
    MalformedResponse,
    ParsedOutput,
    flavours,
    make_client,
)
from canary.endpoints.openai import OpenAIChat, OpenAICompletions
from canary.endpoints.ratelimit import TokenBucket, get_limiter, reset_limiters

__all__ = [
    "AnthropicMessages",
    "EndpointClient",
    "MalformedResponse",
    "OpenAIChat",
    "OpenAICompletions",
    "ParsedOutput",
    "TokenBucket",
    "flavours",
    "get_limiter",
    "make_client",
    "reset_limiters",
]

"""How a chat probe is rendered for the reference: the same text the endpoint's model sees.

A chat endpoint applies a chat template to the messages before its model sees them; the
reference must apply the same one, or every chat probe diverges at the first token. The
template is the tokenizer's own (`model`, the default when it has one), a named one from
`NAMED_TEMPLATES`, or an inline Jinja string. Rendering goes through the tokenizer's
`apply_chat_template`, the Jinja environment servers such as `transformers serve` use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from canary.config.reference import MODEL_TEMPLATE

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from canary.probes.model import Message

#: Templates known by name. `transcript` is canary's own `role: content` format, what the
#: simulated fleet applies (and what the shipped model's `chat_template.jinja` renders).
NAMED_TEMPLATES: dict[str, str] = {
    "transcript": (
        "{{ bos_token }}{% for message in messages %}"
        "{{ message['role'] }}: {{ message['content'] }}\n"
        "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
    ),
    "chatml": (
        "{% for message in messages %}"
        "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
    "llama3": (
        "{{ bos_token }}{% for message in messages %}"
        "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
        "{{ message['content'] | trim }}<|eot_id|>"
        "{% endfor %}{% if add_generation_prompt %}"
        "<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
    ),
}


@dataclass(frozen=True)
class ChatTemplate:
    """A resolved template: its Jinja source and the short name stored with scores."""

    source: str
    label: str
    """`model:<hash>`, a registered name, or `inline:<hash>`: part of the score fingerprint."""

    def render(self, tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message]) -> str:
        """The prompt text for ``messages`` with the generation prompt appended."""
        from canary.errors import ConfigError

        try:
            text = tokenizer.apply_chat_template(
                [{"role": m.role, "content": m.content} for m in messages],
                chat_template=self.source,
                tokenize=False,
                add_generation_prompt=True,
            )
        except Exception as exc:  # jinja2 syntax/undefined errors, raise_exception() in templates
            raise ConfigError(
                f"chat template {self.label}: {type(exc).__name__}: {exc}; fix the template "
                f"or name one of {', '.join(NAMED_TEMPLATES)}"
            ) from None
        return str(text)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def resolve_template(tokenizer: PreTrainedTokenizerBase, spec: str | None) -> ChatTemplate:
    """The template ``spec`` names for this tokenizer.

    None means the tokenizer's own template when it has one, else `transcript` (what canary
    always rendered). `model` insists on the tokenizer's own; anything holding `{{` or `{%` is
    inline Jinja; any other text must be a name in `NAMED_TEMPLATES`.
    """
    from canary.errors import ConfigError

    own = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
    if spec is None:
        spec = MODEL_TEMPLATE if own else "transcript"
    if spec == MODEL_TEMPLATE:
        if not own:
            raise ConfigError(
                "chat_template 'model': the reference tokenizer has no chat template; name one "
                f"({', '.join(NAMED_TEMPLATES)}) or give the Jinja text the endpoint applies"
            )
        # The shipped model's own template is the transcript: named so, its scores keep the
        # fingerprint chat probes had before templates were configurable.
        named = next((n for n, source in NAMED_TEMPLATES.items() if source == own), None)
        return ChatTemplate(own, named or f"model:{_digest(own)}")
    if "{{" in spec or "{%" in spec:
        return ChatTemplate(spec, f"inline:{_digest(spec)}")
    if spec in NAMED_TEMPLATES:
        return ChatTemplate(NAMED_TEMPLATES[spec], spec)
    raise ConfigError(
        f"chat_template {spec!r} is not a known template; use 'model' (the tokenizer's own), "
        f"one of {', '.join(NAMED_TEMPLATES)}, or an inline Jinja string"
    )

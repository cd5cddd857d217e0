"""The reference model: fp32 greedy outputs and exact sampling distributions to compare against."""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from canary.records import TokenLogprob, finite_logprob, token_key
from canary.reference._bytes import TokenBytes
from canary.reference._templates import ChatTemplate, resolve_template

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from canary.probes.model import Probe

# Config keys that change with the library, not with the model.
_VOLATILE_CONFIG_KEYS = frozenset({"transformers_version", "_name_or_path", "dtype", "torch_dtype"})
#: Prompts per forward pass; bounds memory on long suites.
DEFAULT_BATCH_SIZE = 16
# Two threads' first import of transformers must not interleave: the second can see a
# half-initialised module ("cannot import name 'AutoModelForCausalLM'").
_IMPORT_LOCK = threading.Lock()


@dataclass(frozen=True)
class ReferenceOutput:
    """The reference model's greedy continuation of one prompt."""

    prompt: str
    text: str
    tokens: list[TokenLogprob] = field(default_factory=list)
    """Every position has its `token_id`; a logprob that is not finite is None (missing)."""
    finish_reason: str = "length"
    """"stop" when the model emitted eos (not included in `tokens`), else "length"."""

    @property
    def token_ids(self) -> list[int]:
        """The generated ids, in order (the reference knows every position's id)."""
        return [t.token_id for t in self.tokens if t.token_id is not None]


def encode_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str) -> list[int]:
    """Prompt token ids exactly as the model was trained to see them (bos first).

    The shipped tokenizer's post-processor prepends `<|bos|>`; the sim server encodes the same
    way, so reference and endpoint continue from identical ids. A prompt that already starts
    with the bos token (a chat template's `{{ bos_token }}`) is encoded without special tokens,
    as servers do after applying a template: never two bos.
    """
    bos = tokenizer.bos_token
    special = not (isinstance(bos, str) and bos and prompt.startswith(bos))
    return list(tokenizer(prompt, add_special_tokens=special)["input_ids"])


def fingerprint_dir(path: Path, config: dict[str, Any]) -> str:
    """SHA-256 over the weight files, the tokenizer file and the canonical config."""
    digest = hashlib.sha256()
    weights = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
    for file in [*weights, *sorted(path.glob("tokenizer.json"))]:
        digest.update(file.name.encode())
        digest.update(b"\0")
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    canonical = {k: v for k, v in config.items() if k not in _VOLATILE_CONFIG_KEYS}
    digest.update(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


class ReferenceModel:
    """A local Hugging Face causal LM (fp32 on CPU unless told), the ground truth endpoints
    must match.

    Load the shipped tiny model with `ReferenceModel.load()`, or any local model directory with
    `ReferenceModel.load(path)`.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        path: Path,
        *,
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.path = path
        self.device = device
        self.dtype = dtype
        self.token_bytes = TokenBytes(tokenizer)
        """Token id → raw bytes (None for special tokens, or a tokenizer scheme not known)."""
        self._templates: dict[str | None, ChatTemplate] = {}

    @classmethod
    def load(
        cls, path: str | Path | None = None, *, device: str = "cpu", dtype: str = "float32"
    ) -> ReferenceModel:
        """Load model and tokenizer from `path` (default, or `canary:tiny`: the shipped
        `canary/sim/model`) through transformers, in ``dtype`` (fp32 unless told) on
        ``device`` (`cpu`, `cuda`, `cuda:N`; a missing GPU is a one-line `ConfigError`)."""
        with _IMPORT_LOCK:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

        from canary.config.reference import SHIPPED_MODEL
        from canary.errors import ConfigError
        from canary.sim import model_dir, quiet_transformers

        quiet_transformers()
        dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
        torch_dtype = dtypes.get(dtype)
        if torch_dtype is None:
            raise ConfigError(f"reference dtype {dtype!r}: use float32, bfloat16 or float16")
        if device != "cpu" and not torch.cuda.is_available():
            raise ConfigError(
                f"reference device {device!r}: no CUDA device is available to this process; "
                "set 'device: cpu' or run canary where the GPU is visible"
            )
        unshipped = path is not None and str(path) != SHIPPED_MODEL
        where = Path(path) if unshipped and path is not None else model_dir()
        if not (where / "config.json").is_file():
            raise ConfigError(
                f"no Hugging Face model at {where} (config.json missing); "
                "give a local model directory or train the shipped one with `canary sim train`"
            )
        tokenizer = AutoTokenizer.from_pretrained(where)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        try:
            model = AutoModelForCausalLM.from_pretrained(
                where, dtype=torch_dtype, device_map=device
            )
        except (OSError, ValueError, RuntimeError) as exc:  # a broken or unsupported checkpoint
            raise ConfigError(
                f"reference model {where}: {type(exc).__name__}: {str(exc).splitlines()[0]}"
            ) from None
        model.eval()
        model.requires_grad_(False)
        from canary.sim import tune_torch_threads

        tune_torch_threads(model)
        return cls(model, tokenizer, where, device=device, dtype=dtype)

    @cached_property
    def fingerprint(self) -> str:
        """Stable identity of weights + tokenizer + config (+ dtype when not fp32); cached
        outputs are keyed by it. fp32 keeps the plain digest, so existing caches stay valid."""
        digest = fingerprint_dir(self.path, self.model.config.to_dict())
        # Within the store's 64 characters: 48 hex digits still leave no collision to fear.
        return digest if self.dtype == "float32" else f"{digest[:48]}-{self.dtype}"

    def render(self, probe: Probe, flavour: str, chat_template: str | None = None) -> str:
        """The text the endpoint's model sees for ``probe`` sent with ``flavour``: a chat
        probe through the chat template (`resolve_template`), a completion its prompt."""
        if "chat" not in flavour:
            return probe.as_prompt()
        return self.template(chat_template).render(self.tokenizer, probe.as_messages())

    def template(self, spec: str | None) -> ChatTemplate:
        """The chat template ``spec`` names for this tokenizer (resolved once per spec)."""
        if spec not in self._templates:
            self._templates[spec] = resolve_template(self.tokenizer, spec)
        return self._templates[spec]

    @property
    def name(self) -> str:
        return self.path.name

    def token_text(self, token_id: int) -> str:
        return str(self.tokenizer.decode([token_id]))

    def token_key(self, token_id: int) -> str:
        """The token's key in `TokenLogprob.top`, comparable with an endpoint's by bytes."""
        return token_key(self.token_text(token_id), self.token_bytes(token_id))

    def _prompt_logits(self, prompt: str) -> torch.Tensor:
        import torch

        ids = torch.tensor(
            [encode_prompt(self.tokenizer, prompt)], dtype=torch.long, device=self.model.device
        )
        with torch.inference_mode():
            return self.model(input_ids=ids).logits[0, -1, :].float()

    def generate_greedy(
        self,
        prompts: Sequence[str],
        max_tokens: int,
        top_logprobs: int = 5,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> list[ReferenceOutput]:
        """Greedy continuations in fp32, batched with left padding; one output per prompt."""
        outputs: list[ReferenceOutput] = []
        for start in range(0, len(prompts), batch_size):
            chunk = list(prompts[start : start + batch_size])
            outputs.extend(self._greedy_batch(chunk, max_tokens, top_logprobs))
        return outputs

    def _greedy_batch(
        self, prompts: list[str], max_tokens: int, top_logprobs: int
    ) -> list[ReferenceOutput]:
        import torch
        from transformers import DynamicCache

        from canary.sim import cache_kwarg

        if not prompts:
            return []
        encoded = [encode_prompt(self.tokenizer, p) for p in prompts]
        width = max(len(e) for e in encoded)
        pad = int(self.tokenizer.pad_token_id)
        eos = self.tokenizer.eos_token_id
        input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, ids in enumerate(encoded):
            input_ids[i, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            mask[i, width - len(ids) :] = 1
        device = self.model.device
        input_ids, mask = input_ids.to(device), mask.to(device)
        # Positions count real tokens only, so a left-padded prompt sees the same RoPE angles
        # as the same prompt alone.
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        generated: list[list[int]] = [[] for _ in prompts]
        tokens: list[list[TokenLogprob]] = [[] for _ in prompts]
        finish = ["length"] * len(prompts)
        done = [False] * len(prompts)
        with torch.inference_mode():
            cache = DynamicCache(config=self.model.config)
            cache_arg = cache_kwarg(self.model)
            out = self.model(
                input_ids=input_ids,
                attention_mask=mask,
                position_ids=positions,
                **{cache_arg: cache},
                use_cache=True,
            )
            last_pos = positions[:, -1:]
            for _ in range(max_tokens):
                logprobs = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)
                chosen = logprobs.argmax(dim=-1)
                k = min(top_logprobs, logprobs.shape[-1])
                top_v, top_i = logprobs.topk(k, dim=-1) if k > 0 else (None, None)
                for r in range(len(prompts)):
                    if done[r]:
                        continue
                    token_id = int(chosen[r])
                    if token_id == eos:
                        done[r], finish[r] = True, "stop"
                        continue
                    top: dict[str, float] = {}
                    if top_v is not None and top_i is not None:
                        for v, i in zip(top_v[r].tolist(), top_i[r].tolist(), strict=True):
                            # Distinct ids can share a surface text; keep the likelier one.
                            if (value := finite_logprob(v)) is not None:
                                top.setdefault(self.token_key(int(i)), value)
                    generated[r].append(token_id)
                    tokens[r].append(
                        TokenLogprob(
                            token=self.token_text(token_id),
                            logprob=finite_logprob(float(logprobs[r, token_id])),
                            top=top,
                            token_id=token_id,
                            bytes=self.token_bytes(token_id),
                        )
                    )
                if all(done):
                    break
                # Finished rows keep decoding (their tokens are ignored) so shapes stay fixed.
                next_ids = chosen.unsqueeze(-1)
                one = torch.ones((len(prompts), 1), dtype=torch.long, device=device)
                mask = torch.cat([mask, one], dim=1)
                last_pos = last_pos + 1
                out = self.model(
                    input_ids=next_ids,
                    attention_mask=mask,
                    position_ids=last_pos,
                    **{cache_arg: cache},
                    use_cache=True,
                )
        return [
            ReferenceOutput(
                prompt=p,
                text=str(self.tokenizer.decode(generated[r], skip_special_tokens=True)),
                tokens=tokens[r],
                finish_reason=finish[r],
            )
            for r, p in enumerate(prompts)
        ]

    def next_token_distribution(
        self,
        prompt: str,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int | None = None,
    ) -> dict[str, float]:
        """The exact distribution a correct sampler draws the first token from, by `token_key`.

        Token ids with the same key are merged (their probabilities add), since endpoints
        report text or bytes; see `next_token_distribution_ids` for the per-id version.
        """
        dist: dict[str, float] = {}
        for token_id, p in self.next_token_distribution_ids(
            prompt, temperature, top_p, top_k
        ).items():
            key = self.token_key(token_id)
            dist[key] = dist.get(key, 0.0) + p
        return dist

    def next_token_distribution_ids(
        self,
        prompt: str,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int | None = None,
    ) -> dict[int, float]:
        """The filtered sampling distribution of the first token, token id → probability.

        Order as in vLLM and Hugging Face: temperature, then top-k, then top-p (the smallest
        prefix of the sorted, renormalised distribution whose mass reaches `top_p`; the top token
        always stays). Temperature 0 is greedy: all mass on the argmax. Ids with zero probability
        are omitted; computed in float64 from the fp32 logits.
        """
        import torch

        if temperature < 0 or not 0 < top_p <= 1 or (top_k is not None and top_k < 1):
            raise ValueError(
                f"invalid sampling params temperature={temperature} top_p={top_p} top_k={top_k}; "
                "use temperature >= 0, 0 < top_p <= 1, top_k >= 1 or None"
            )
        logits = self._prompt_logits(prompt).double()
        if temperature == 0:
            return {int(logits.argmax()): 1.0}
        probs = torch.softmax(logits / temperature, dim=-1)
        sorted_p, sorted_i = probs.sort(descending=True, stable=True)
        keep = sorted_p.numel()
        if top_k is not None:
            keep = min(keep, top_k)
        if top_p < 1.0:
            cumulative = sorted_p[:keep].cumsum(0) / sorted_p[:keep].sum()
            threshold = torch.tensor(top_p, dtype=cumulative.dtype)
            keep = min(keep, int(torch.searchsorted(cumulative, threshold)) + 1)
        kept_p = sorted_p[:keep] / sorted_p[:keep].sum()
        dist = {
            int(i): p
            for p, i in zip(kept_p.tolist(), sorted_i[:keep].tolist(), strict=True)
            if p > 0
        }
        assert math.isclose(sum(dist.values()), 1.0, rel_tol=1e-9)
        return dist

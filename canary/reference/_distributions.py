"""What the local reference model says about an endpoint's outputs: the torch side of identity.

Teacher-forced distributions at every position the endpoint generated, samples drawn from the
reference with the endpoint's parameters (for MMD and RUT), and their log-likelihoods. torch is
imported inside each function; everything returned is plain Python.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from canary.records import TokenLogprob

if TYPE_CHECKING:
    from canary.reference._model import ReferenceModel

#: Reference tokens kept per position besides the endpoint's: its top-k joins the KL union.
REFERENCE_TOP = 5


@lru_cache(maxsize=4)
def _vocab_keys(model: ReferenceModel) -> tuple[str, ...]:
    size = int(model.model.get_output_embeddings().weight.shape[0])
    return tuple(model.token_key(i) for i in range(size))


def teacher_positions(
    model: ReferenceModel,
    prompt: str,
    tokens: Sequence[TokenLogprob],
    text: str,
) -> list[tuple[dict[str, float], str]]:
    """Per endpoint position: the reference's logprobs of the tokens that matter (the
    endpoint's top-k and the reference's own top-5) and the reference's top token key.

    Positions are aligned through the reference's tokens of the endpoint's output: ids the
    endpoint sent when it sent all of them, else the output text re-tokenized; alignment
    stops at the first position whose token key differs (a different tokenizer).
    """
    import torch

    from canary.reference._model import encode_prompt

    keys = _vocab_keys(model)
    prompt_ids = encode_prompt(model.tokenizer, prompt)
    if tokens and all(t.token_id is not None for t in tokens):
        output_ids = [int(t.token_id) for t in tokens if t.token_id is not None]
    else:
        output_ids = list(model.tokenizer(text, add_special_tokens=False)["input_ids"])
    aligned = 0
    for token, token_id in zip(tokens, output_ids, strict=False):
        if token_id >= len(keys) or not _same_token(token, keys[token_id]):
            break
        aligned += 1
    if aligned == 0:
        return []
    ids = torch.tensor([prompt_ids + output_ids[:aligned]], dtype=torch.long)
    with torch.inference_mode():
        logits = model.model(input_ids=ids.to(model.model.device)).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1).double().cpu()
    rows = logprobs[len(prompt_ids) - 1 : len(prompt_ids) - 1 + aligned]
    out = []
    for token, row in zip(tokens[:aligned], rows, strict=True):
        top_ids = row.topk(REFERENCE_TOP).indices.tolist()
        wanted = set(token.top) | {keys[i] for i in top_ids}
        out.append((_key_logprobs(row, keys, wanted), keys[top_ids[0]]))
    return out


def _same_token(token: TokenLogprob, key: str) -> bool:
    from canary.records import token_key

    return token_key(token.token, token.bytes) == key or token.token == key


def _key_logprobs(row: object, keys: Sequence[str], wanted: set[str]) -> dict[str, float]:
    """Logprob per wanted key; ids that share a key add their probabilities."""
    values = row.tolist()  # type: ignore[attr-defined]
    out: dict[str, float] = {}
    for token_id, key in enumerate(keys):
        if key in wanted:
            prior = out.get(key)
            value = values[token_id]
            out[key] = value if prior is None else float(_logaddexp(prior, value))
    return out


def _logaddexp(a: float, b: float) -> float:
    high = max(a, b)
    return high + math.log(math.exp(a - high) + math.exp(b - high))


def reference_samples(
    model: ReferenceModel,
    prompts: Sequence[str],
    n: int,
    *,
    max_tokens: int,
    temperature: float = 1.0,
    seed: int = 0,
) -> list[list[str]]:
    """`n` completions per prompt sampled from the reference (full softmax at `temperature`),
    stopping at eos or `max_tokens`, decoded as an endpoint would return them."""
    import torch

    from canary.reference._model import encode_prompt

    torch.manual_seed(seed)
    tokenizer = model.tokenizer
    out: list[list[str]] = []
    for prompt in prompts:
        ids = torch.tensor([encode_prompt(tokenizer, prompt)], dtype=torch.long)
        ids = ids.repeat(n, 1).to(model.model.device)
        with torch.inference_mode():
            generated = model.model.generate(  # type: ignore[operator]
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=True,
                temperature=temperature,
                top_k=0,
                top_p=1.0,
                max_new_tokens=max_tokens,
                pad_token_id=int(tokenizer.pad_token_id),
                eos_token_id=tokenizer.eos_token_id,
            )
        tails = generated[:, ids.shape[1] :].tolist()
        out.append([str(tokenizer.decode(t, skip_special_tokens=True)) for t in tails])
    return out


def log_likelihoods(model: ReferenceModel, pairs: Sequence[tuple[str, str]]) -> list[float]:
    """The reference's total logprob of each (prompt, completion); -inf when not scorable."""
    from canary.reference._teacher import continuation_logprobs

    out = []
    for row in continuation_logprobs(model, pairs):
        values = [v for v in row if v is not None]
        out.append(float(sum(values)) if values else (0.0 if not row else -math.inf))
    return out

"""The reference's log-probabilities of text an endpoint wrote (teacher forcing).

Greedy agreement needs the reference's own continuation; judging whether *any* output is text
the model would write needs the reference's probability of that output, token by token, given
the prompt the endpoint saw. One forward pass per (prompt, output), batched with right padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from canary.records import finite_logprob
from canary.reference._model import encode_prompt

if TYPE_CHECKING:
    from canary.reference._model import ReferenceModel

#: Output tokens scored per result: enough for a mean, bounded so one long answer cannot make a
#: scoring pass slow.
MAX_SCORED_TOKENS = 256
#: Pairs per forward pass.
BATCH_SIZE = 16


def continuation_logprobs(
    model: ReferenceModel, pairs: Sequence[tuple[str, str]], *, batch_size: int = BATCH_SIZE
) -> list[list[float | None]]:
    """For each (rendered prompt, output text): the reference's logprob of each output token.

    The output is tokenized by the reference's tokenizer (the endpoint's own ids are not
    comparable across tokenizers); a value that is not finite is None (missing).
    """
    out: list[list[float | None]] = []
    for start in range(0, len(pairs), batch_size):
        out += _batch(model, pairs[start : start + batch_size])
    return out


def _batch(model: ReferenceModel, pairs: Sequence[tuple[str, str]]) -> list[list[float | None]]:
    import torch

    tokenizer = model.tokenizer
    limit = int(getattr(model.model.config, "max_position_embeddings", 0) or 1 << 30)
    rows: list[tuple[list[int], int]] = []
    for prompt, text in pairs:
        prompt_ids = encode_prompt(tokenizer, prompt)
        output_ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        output_ids = output_ids[:MAX_SCORED_TOKENS]
        keep = max(0, min(len(prompt_ids), limit - len(output_ids)))
        prompt_ids = prompt_ids[len(prompt_ids) - keep :]
        rows.append((prompt_ids + output_ids, len(prompt_ids)))
    judged = [i for i, (ids, prompt_len) in enumerate(rows) if 0 < prompt_len < len(ids)]
    out: list[list[float | None]] = [[] for _ in pairs]
    if not judged:
        return out
    scored = [rows[i] for i in judged]
    width = max(len(ids) for ids, _ in scored)
    pad = int(tokenizer.pad_token_id)
    device = model.model.device
    input_ids = torch.full((len(scored), width), pad, dtype=torch.long)
    mask = torch.zeros((len(scored), width), dtype=torch.long)
    for i, (ids, _) in enumerate(scored):
        input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[i, : len(ids)] = 1
    with torch.inference_mode():
        logits = model.model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
    for i, (ids, prompt_len) in enumerate(scored):
        targets = torch.tensor(ids[prompt_len:], dtype=torch.long)
        # Position t predicts token t + 1: the output's tokens are predicted from prompt_len - 1.
        rows_lp = logprobs[i, prompt_len - 1 : len(ids) - 1, :]
        chosen = rows_lp.gather(1, targets.unsqueeze(1)).squeeze(1).tolist()
        out[judged[i]] = [finite_logprob(v) for v in chosen]
    return out

"""The fault mechanisms in isolation: exact properties of approx top-k and logit corruption."""

from __future__ import annotations

import torch

from canary.sim.faults import LogitCorruptor, approx_topk, dropped_prefix, target_token_ids
from canary.sim.fleetconfig import CorruptLogits
from canary.sim.sampling import EXACT, RowSampling, TopkPath, choose_tokens


def test_approx_topk_is_exact_at_top1_in_per_row_layout_and_at_batch_1() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 4096, generator=g)
    for fused, batch in [(False, 8), (True, 1)]:
        _, ids = approx_topk(logits[:batch], 96, fused=fused)
        assert ids[:, 0].tolist() == logits[:batch].argmax(-1).tolist()


def test_fused_layout_drops_exactly_the_leading_ids_of_later_rows() -> None:
    vocab, bucket = 4096, 96
    logits = torch.zeros(8, vocab)
    for row in range(8):
        logits[row, 5] = 10.0  # the true max sits at a low id in every row
    _, ids = approx_topk(logits, bucket, fused=True)
    lost = [row for row in range(8) if int(ids[row, 0]) != 5]
    assert lost == [row for row in range(8) if dropped_prefix(vocab, bucket, row) > 5]
    assert lost and 0 not in lost


def test_fused_bug_vanishes_when_bucket_size_divides_vocab() -> None:
    logits = torch.randn(8, 4096, generator=torch.Generator().manual_seed(1))
    _, ids = approx_topk(logits, 128, fused=True)
    assert ids[:, 0].tolist() == logits.argmax(-1).tolist()


def test_fused_path_only_for_listed_batch_sizes() -> None:
    path = TopkPath(bucket_size=96, fused_batch_sizes=(8,))
    assert path.fused(8) and not path.fused(4) and not path.fused(1)
    assert TopkPath(bucket_size=96).fused(2) and not TopkPath(bucket_size=96).fused(1)


def test_exact_sampler_is_seeded_per_row() -> None:
    logits = torch.randn(2, 50, generator=torch.Generator().manual_seed(2))

    def rows(seed: int) -> list[RowSampling]:
        return [RowSampling(1.0, 0.9, 20, torch.Generator().manual_seed(seed)) for _ in range(2)]

    draws = [choose_tokens(logits, rows(7), EXACT) for _ in range(3)]
    assert draws[0] == draws[1] == draws[2]
    greedy = [RowSampling(0.0, 1.0, None, torch.Generator()) for _ in range(2)]
    assert choose_tokens(logits, greedy) == logits.argmax(-1).tolist()


def test_corruptor_fires_at_rate_p_and_boosts_targets_to_top() -> None:
    strings = ["a", "b", "สวัสดี", "中", ")", '":', "c"] * 20
    targets = target_token_ids(strings)
    assert {strings[i] for i in targets["rare_script"]} == {"สวัสดี", "中"}
    assert {strings[i] for i in targets["syntax"]} == {")", '":'}
    corruptor = LogitCorruptor(CorruptLogits(p=0.2, seed=3), targets)
    fired = 0
    trials = 2000
    for _ in range(trials // 10):
        logits = torch.randn(10, len(strings))
        logits[:, targets["both"]] -= 20.0  # healthy: targets never win on their own
        hits = corruptor.apply(logits)
        for row, hit in enumerate(hits):
            assert (int(logits[row].argmax()) in targets["rare_script"]) == hit
        fired += sum(hits)
    sd = (0.2 * 0.8 / trials) ** 0.5
    assert abs(fired / trials - 0.2) < 4 * sd

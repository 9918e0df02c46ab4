"""The neighbour style term and the self-similarity content term, against direct formulas on small inputs."""

from __future__ import annotations

import math

import pytest
import torch

from nstcli.terms.hypercolumns import grid_for, hypercolumns
from nstcli.terms.neighbours import NeighbourStyle, chunk_rows, nearest, neighbour_loss, style_bank
from nstcli.terms.self_similarity import SelfSimilarity


def random_rows(n, d, seed, shift=0.0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


def direct_nearest(queries, keys):
    """argmin_j of 1 - cos(q_i - mean(Q), k_j - mean(K)), one pair at a time in plain Python."""
    q = queries - queries.mean(0)
    k = keys - keys.mean(0)
    out = []
    for i in range(q.shape[0]):
        distances = [1 - float(q[i] @ k[j]) / (float(q[i].norm()) * float(k[j].norm())) for j in range(k.shape[0])]
        out.append(min(range(len(distances)), key=distances.__getitem__))
    return torch.tensor(out)


def test_nearest_matches_the_direct_formula():
    queries, keys = random_rows(23, 7, 0, shift=3.0), random_rows(31, 7, 1, shift=-2.0)
    assert torch.equal(nearest(queries, keys), direct_nearest(queries, keys))


def test_centring_changes_the_neighbours_an_offset_would_decide():
    # Keys differ from the queries by a large common offset: uncentred, every query's nearest key is
    # the one most aligned with the offset; centred, each finds the key it was made from.
    keys = random_rows(40, 5, 2)
    queries = keys[torch.arange(39, -1, -1)] * 1.5 + 10.0
    assert torch.equal(nearest(queries, keys + 20.0), torch.arange(39, -1, -1))


@pytest.mark.parametrize("rows", [1, 3, 7, 64, 1000])
def test_chunked_search_equals_the_unchunked_one(rows):
    queries, keys = random_rows(100, 9, 3), random_rows(57, 9, 4)
    assert torch.equal(nearest(queries, keys, rows=rows), nearest(queries, keys, rows=queries.shape[0]))


def test_chunks_stay_within_their_byte_budget():
    assert chunk_rows(32768, 64 * 2**20) * 32768 * 4 <= 64 * 2**20
    assert chunk_rows(10**9, 1024) == 1  # always at least one row


def test_loss_is_the_mean_of_one_minus_cosine():
    current, chosen = random_rows(6, 4, 5), random_rows(6, 4, 6)
    targets = chosen / chosen.norm(dim=1, keepdim=True)
    expected = sum(1 - float(current[i] @ chosen[i]) / (float(current[i].norm()) * float(chosen[i].norm()))
                   for i in range(6)) / 6
    assert math.isclose(float(neighbour_loss(current, targets)), expected, rel_tol=1e-12)


def features(seed, h=8, w=8, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return {"relu1_1": torch.rand(1, 4, h, w, generator=g) * scale,
            "relu2_1": torch.rand(1, 6, h // 2, w // 2, generator=g) * scale}


def test_hypercolumns_divide_each_layer_by_its_channels_and_share_one_grid():
    f = features(0)
    columns = hypercolumns(f, {"relu1_1": 1.0, "relu2_1": 2.0}, (4, 4))
    assert columns.shape == (16, 10)
    # relu2_1 is already 4 x 4: its part is the map itself, times 2 / 6 channels, in row-major order.
    expected = (f["relu2_1"][0] * (2.0 / 6)).reshape(6, 16).t()
    assert torch.allclose(columns[:, 4:], expected)
    # relu1_1 is averaged down 2:1: each cell the mean of its 2 x 2 block.
    block = torch.nn.functional.avg_pool2d(f["relu1_1"], 2)[0] / 4
    assert torch.allclose(columns[:, :4], block.reshape(4, 16).t(), atol=1e-6)


def test_the_term_targets_the_nearest_style_columns_of_the_content_and_image_blend():
    layers = {"relu1_1": 1.0, "relu2_1": 1.0}
    style, content, current = features(1), features(2), features(3)
    term = NeighbourStyle.from_features([style], [1.0], [(32, 32)], layers, weight=2.0, content_mix=0.75)
    term = term.for_content(content, (1, 3, 32, 32))
    loss = term(current, torch.zeros(1, 3, 32, 32))
    grid = grid_for((32, 32))
    bank = hypercolumns(style, layers, grid)
    blend = 0.75 * hypercolumns(content, layers, grid) + 0.25 * hypercolumns(current, layers, grid)
    chosen = bank[direct_nearest(blend.double(), bank.double())]
    now = hypercolumns(current, layers, grid)
    expected = 2.0 * (1 - torch.nn.functional.cosine_similarity(now, chosen, dim=1)).mean()
    assert math.isclose(float(loss), float(expected), rel_tol=1e-5)


def test_targets_are_searched_again_every_refresh_steps_only():
    layers = {"relu1_1": 1.0, "relu2_1": 1.0}
    term = NeighbourStyle.from_features([features(1)], [1.0], [(32, 32)], layers, 1.0, refresh=2)
    term = term.for_content(features(2), (1, 3, 32, 32))
    searches = []
    original = term.search
    term.search = lambda current: (searches.append(term.calls), original(current))
    for _ in range(5):
        term(features(3), torch.zeros(1, 3, 32, 32))
    assert searches == [0, 2, 4]


def test_no_gradient_flows_through_the_search():
    layers = {"relu1_1": 1.0, "relu2_1": 1.0}
    current = {k: v.clone().requires_grad_(True) for k, v in features(3).items()}
    term = NeighbourStyle.from_features([features(1)], [1.0], [(32, 32)], layers, 1.0)
    term(current, torch.zeros(1, 3, 32, 32)).backward()
    assert term.targets.requires_grad is False
    assert all(v.grad is not None and bool(v.grad.abs().sum() > 0) for v in current.values())


def test_style_blend_keeps_a_share_of_a_lesser_styles_columns():
    layers = {"relu1_1": 1.0, "relu2_1": 1.0}
    bank = style_bank([features(1), features(2)], [0.75, 0.25], layers, [(32, 32), (32, 32)])
    assert bank.shape[0] == 64 + round(64 / 3)  # an 8 x 8 grid from 32 x 32 px each
    assert style_bank([features(1), features(2)], [1.0, 0.0], layers, [(32, 32)] * 2).shape[0] == 64


def test_self_similarity_against_the_direct_formula():
    layers = ("relu1_1", "relu2_1")
    content, current = features(4), features(5)
    term = SelfSimilarity.from_features({k: content[k] for k in layers}, weight=3.0)
    value = term(current, torch.zeros(1, 3, 32, 32))

    def matrix(f):
        x = hypercolumns(f, {name: 1.0 for name in layers}, term.grid).double()
        n = x.shape[0]
        d = torch.tensor([[1 - float(x[i] @ x[j]) / (float(x[i].norm()) * float(x[j].norm())) for j in range(n)]
                          for i in range(n)], dtype=torch.float64)
        return d / d.sum(0, keepdim=True)

    expected = 3.0 * (matrix(current) - matrix(content)).abs().mean() * term.grid[0] * term.grid[1]
    assert math.isclose(float(value), float(expected), rel_tol=1e-4)
    # The photo itself keeps its own self-similarity exactly, and an overall brightening of its
    # features (a uniform scale) changes nothing: the term sees the pattern, not the values.
    assert float(term(content, torch.zeros(1, 3, 32, 32))) < 1e-6
    assert float(term({k: v * 5 for k, v in content.items()}, torch.zeros(1, 3, 32, 32))) < 1e-5


def test_self_similarity_grid_is_bounded_at_any_size():
    big = {"relu1_1": torch.rand(1, 2, 400, 300)}
    term = SelfSimilarity.from_features(big, 1.0)
    assert max(term.grid) == 32 and term.target.shape == (32 * 24, 32 * 24)

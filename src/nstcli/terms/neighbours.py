"""Neural-neighbour style: every position's hypercolumn pulled towards its nearest style hypercolumn.

Kolkin, Kučera, Paris, Sýkora, Shechtman & Shakhnarovich, "Neural Neighbor Style Transfer" (2022).
Instead of matching statistics of the style (Gram matrices, moments), each position of the image gets
a target of its own: the style hypercolumn (terms/hypercolumns.py) nearest to it under the centred
cosine distance

    d(q, k) = 1 - cos(q - mean(Q), k - mean(K)),

each set centred on its own mean, as NNST does, so that a photo and a painting whose features differ
by an overall offset are still compared by their variations. The loss is

    weight * mean over positions n of (1 - cos(o_n, t_n)),

o_n the current image's hypercolumn at n and t_n its target (fixed: no gradient flows through the
search). The search is run for a blend of the content's hypercolumns and the current image's
(`neighbour_content_mix`, NNST's alpha 0.75 for the content), so the targets follow the photo's
layout while the image is free to drift from it; it is repeated every `neighbour_refresh` steps of a
scale, or once at the scale's first step.

The N x M distance matrix (N image positions, M style positions: 16384 x 65536 at 512 px with four
rotations, 4 GB in float32) is never held: the search goes through the image's positions a chunk at
a time, keeping only each row's best match.

Several style images pool their hypercolumns into one set to search; a blend weight below the
largest keeps that share of the image's hypercolumns (evenly spaced), so a style given weight 0.25
next to one given 0.75 offers a third as many candidates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F

from nstcli.terms.base import Features, Term
from nstcli.terms.hypercolumns import grid_for, hypercolumns

# Bytes of distance matrix computed at once: chunks of image positions are cut to stay within it.
CHUNK_BYTES = 64 * 2**20
# The most style hypercolumns searched (evenly spaced beyond): the search costs N x M x D, and at
# 512 px with four rotations M would reach 65536; 32768 keeps the quarter-image grid's detail while
# halving that cost.
MAX_STYLE_COLUMNS = 32768


def centred_unit(rows: torch.Tensor, centre: torch.Tensor | None = None) -> torch.Tensor:
    """Rows minus `centre` (their own mean by default), scaled to unit length."""
    centre = rows.mean(0, keepdim=True) if centre is None else centre
    return F.normalize(rows - centre, dim=1, eps=1e-8)


def chunk_rows(keys: int, chunk_bytes: int = CHUNK_BYTES) -> int:
    """How many query rows fit `chunk_bytes` of float32 distances against `keys` keys."""
    return max(1, chunk_bytes // (4 * max(1, keys)))


@torch.no_grad()
def nearest(queries: torch.Tensor, keys: torch.Tensor, rows: int | None = None) -> torch.Tensor:
    """For each query row, the index of the key row nearest under the centred cosine distance.

    (N, D), (M, D) -> (N,) int64. Both sets are centred on their own means; `rows` query rows are
    compared at a time (by default as many as CHUNK_BYTES of distances allow), so the memory is
    rows x M, never N x M. Ties go to the lowest index.
    """
    q = centred_unit(queries.float())
    k = centred_unit(keys.float())
    rows = rows or chunk_rows(k.shape[0])
    out = torch.empty(q.shape[0], dtype=torch.long, device=q.device)
    for start in range(0, q.shape[0], rows):
        # The largest cosine is the smallest distance 1 - cos.
        similarity = q[start:start + rows] @ k.t()
        out[start:start + rows] = similarity.argmax(dim=1)
    return out


def neighbour_loss(current: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """mean over rows of 1 - cos(current_n, targets_n); `targets` already of unit length."""
    return (1.0 - (F.normalize(current, dim=1, eps=1e-8) * targets).sum(1)).mean()


def evenly_spaced(count: int, keep: int, device=None) -> torch.Tensor:
    """`keep` indices spread evenly over range(count)."""
    if keep >= count:
        return torch.arange(count, device=device)
    return torch.linspace(0, count - 1, keep, device=device).round().long()


def style_columns(features: Features, layer_weights: Mapping[str, float], shape: Sequence[int]) -> torch.Tensor:
    """One style image's (M_i, D) hypercolumns, from its features and its pixel shape (H, W)."""
    return hypercolumns(features, layer_weights, grid_for(shape)).detach()


def pooled(columns: Iterable[torch.Tensor | None], blend: Sequence[float],
           max_columns: int = MAX_STYLE_COLUMNS) -> torch.Tensor:
    """The (M, D) set to search: each style's columns (None where its blend weight is 0), a style below the
    largest weight keeping that share of them, the whole thinned evenly to at most `max_columns`."""
    largest = max(blend)
    parts = []
    for rows, share in zip(columns, blend):
        if share == 0 or rows is None:
            continue
        keep = max(1, round(rows.shape[0] * share / largest))
        parts.append(rows[evenly_spaced(rows.shape[0], keep, rows.device)])
    bank = torch.cat(parts)
    return bank[evenly_spaced(bank.shape[0], max_columns, bank.device)]


def style_bank(style_features: Sequence[Features], blend: Sequence[float], layer_weights: Mapping[str, float],
               shapes: Sequence[tuple[int, int]], max_columns: int = MAX_STYLE_COLUMNS) -> torch.Tensor:
    """The pooled (M, D) style hypercolumns to search, from each style image's features and pixel shape."""
    return pooled((style_columns(features, layer_weights, shape) if share else None
                   for features, share, shape in zip(style_features, blend, shapes)), blend, max_columns)


class NeighbourStyle(Term):
    """weight * mean_n (1 - cos(o_n, t_n)), t_n the style hypercolumn nearest to the blend at n.

    Built once per style and size (`PreparedStyle` caches it) and bound to each scale's content with
    `for_content`; the targets are searched at the first call and every `refresh` calls after.
    """

    name = "style"

    def __init__(self, bank: torch.Tensor, layer_weights: Mapping[str, float], weight: float, *,
                 content_mix: float = 0.75, refresh: int = 0, content: torch.Tensor | None = None):
        self.bank = bank
        self.layer_weights = {name: float(w) for name, w in layer_weights.items()}
        self.layers = tuple(name for name, w in self.layer_weights.items() if w)
        self.weight = float(weight)
        self.content_mix = float(content_mix)
        self.refresh = int(refresh)
        self.content = content  # (N, D) hypercolumns of this scale's content, or None
        self.targets: torch.Tensor | None = None
        self.calls = 0

    @classmethod
    def from_features(cls, style_features: Sequence[Features], blend: Sequence[float],
                      shapes: Sequence[tuple[int, int]], layer_weights: Mapping[str, float], weight: float,
                      **options) -> "NeighbourStyle":
        return cls(style_bank(style_features, blend, layer_weights, shapes), layer_weights, weight, **options)

    def for_content(self, features: Features, shape: Sequence[int]) -> "NeighbourStyle":
        """This term for one scale: the same style bank, the content's hypercolumns at `shape`, no targets yet."""
        content = hypercolumns(features, self.layer_weights, grid_for(shape)).detach()
        return NeighbourStyle(self.bank, self.layer_weights, self.weight, content_mix=self.content_mix,
                              refresh=self.refresh, content=content)

    @torch.no_grad()
    def search(self, current: torch.Tensor) -> None:
        queries = current.detach()
        if self.content is not None and self.content.shape == queries.shape:
            queries = self.content_mix * self.content + (1.0 - self.content_mix) * queries
        self.targets = F.normalize(self.bank[nearest(queries, self.bank)], dim=1, eps=1e-8)

    def __call__(self, features: Features, image: torch.Tensor) -> torch.Tensor:
        current = hypercolumns(features, self.layer_weights, grid_for(image.shape))
        due = self.targets is None or self.targets.shape[0] != current.shape[0]
        if due or (self.refresh and self.calls % self.refresh == 0):
            self.search(current)
        self.calls += 1
        return self.weight * neighbour_loss(current, self.targets)


def search_bytes(shape: Sequence[int], style_shapes: Sequence[Sequence[int]], width: int) -> int:
    """What the term holds beyond the network's own memory at a scale of (H, W): the content's and
    the image's hypercolumns (with the latter's gradient and centred copy), the style set (and its
    centred copy), one chunk of distances. `width` is D, the hypercolumn's length (float32 throughout)."""
    h, w = grid_for(shape)
    columns = min(MAX_STYLE_COLUMNS, sum(gh * gw for gh, gw in (grid_for(s) for s in style_shapes)))
    return 4 * (4 * h * w * width + 2 * columns * width) + CHUNK_BYTES


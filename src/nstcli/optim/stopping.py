"""When a scale has stopped improving: the plateau rule that ends a scale before its `steps`.

A scale's loss falls fast at first and then crawls; the crawl repaints little (its images look alike
by eye) while each step still costs a full forward and backward. The rule watches the lowest loss
seen so far, not the last one: L-BFGS without a line search zig-zags, so the last loss can rise for a
step while the run still improves. It stops when that lowest loss fell by less than `tolerance` (a
fraction of it) over the last `window` steps, and only once the scale has shed at least half of its
first loss: from the photo, L-BFGS's first steps barely move the loss (for 15 to 25 steps at 192 px)
before it falls by an order of magnitude, and a rule that judged that flat start would return the
photo unpainted. How `window` and `tolerance` were chosen:
benchmarks/README.md, "Time to the picture".
"""

from __future__ import annotations

from dataclasses import dataclass

# Why a scale ended, as `--json` reports it.
RAN_OUT = "steps"  # it ran every step it was given
PLATEAU = "plateau"  # its loss stopped improving first
# A scale is judged only once its lowest loss is below this fraction of its first.
STARTED = 0.5


@dataclass(frozen=True)
class Plateau:
    """Stop once the lowest loss fell by less than `tolerance` x itself over the last `window` steps."""

    window: int
    tolerance: float

    @property
    def active(self) -> bool:
        return self.window > 0 and self.tolerance > 0

    def reached(self, lowest: list[float]) -> bool:
        """`lowest[i]` is the lowest loss after step i + 1 of this scale (never increasing)."""
        if not self.active or len(lowest) <= self.window:
            return False
        if lowest[-1] > STARTED * lowest[0]:  # still in the flat start, or nothing to improve
            return False
        before, now = lowest[-1 - self.window], lowest[-1]
        return before - now < self.tolerance * abs(before)

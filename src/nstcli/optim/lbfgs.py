"""L-BFGS for one image tensor, one function evaluation per step, in a handful of large operations.

It computes the same search direction as `torch.optim.LBFGS(max_iter=1, line_search_fn=None)`
(same first step, same rule for keeping curvature pairs, same initial Hessian scaling), but not with
the textbook two-loop recursion: with a history of 100 pairs that recursion is 400 small vector
operations and 200 host syncs per step, which on a busy 2-core CPU cost a fifth of the network's
forward + backward at 256 px (benchmarks/stylize/profile_step.py), and on a GPU stall on every sync.

Instead the pairs live as rows of two matrices S and Y, and the direction comes from the compact
representation of the inverse Hessian (Byrd, Nocedal & Schnabel 1994; Nocedal & Wright, Numerical
Optimization, eq. 7.24):

    H = g I + [S^T  g Y^T] [[R^-T (D + g Y Y^T) R^-1, -R^-T], [-R^-1, 0]] [S; g Y]

with g the initial Hessian scale, R the upper triangle of S Y^T (pairs in chronological order) and
D its diagonal. H times a gradient needs four matrix-vector products over the history (the same
memory traffic as the two-loop recursion) and triangular solves with k x k matrices, which are kept
in float64 because they are tiny.
"""

from __future__ import annotations

import torch


class LBFGS(torch.optim.Optimizer):
    """L-BFGS without line search for a single tensor: `step(closure)` is one evaluation and one move."""

    def __init__(self, params, lr: float = 1.0, history_size: int = 100):
        super().__init__(params, {"lr": lr, "history_size": history_size})
        tensors = [p for group in self.param_groups for p in group["params"]]
        if len(tensors) != 1:
            raise ValueError("this L-BFGS optimises exactly one tensor")
        self._x = tensors[0]
        # The pairs' vectors sit in a ring of rows (the oldest is overwritten when the history is
        # full); their k x k products are kept in chronological order, oldest first.
        self._S: torch.Tensor | None = None  # rows: steps s_i
        self._Y: torch.Tensor | None = None  # rows: gradient changes y_i
        self._SY: torch.Tensor | None = None  # [i, j] = s_i . y_j for i <= j, float64
        self._YY: torch.Tensor | None = None  # [i, j] = y_i . y_j
        self._count = 0  # pairs stored
        self._oldest = 0  # row of the oldest pair
        self._gamma = 1.0  # initial inverse Hessian scale: s.y / y.y of the newest pair
        self._prev_grad: torch.Tensor | None = None
        self._step_taken: torch.Tensor | None = None  # t * d of the last step
        self._iterations = 0

    @property
    def pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The curvature pairs held (at most `history_size`): rows of the steps s_i and of the gradient
        changes y_i, in ring order."""
        if self._S is None:
            empty = self._x.new_empty(0, self._x.numel())
            return empty, empty
        return self._S[: self._count], self._Y[: self._count]

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        x = self._x
        grad = x.grad.reshape(-1)
        group = self.param_groups[0]
        lr = group["lr"]
        self._iterations += 1
        if self._iterations == 1:
            direction = grad.neg()
            # torch's first step: at most lr, and smaller when the gradient is large. A zero gradient
            # (an already optimal start, e.g. --style-weight 0 from the content) has no direction to
            # scale: the step is then zero whatever t is, so t = lr rather than dividing by zero.
            total = float(grad.abs().sum())
            t = (min(1.0, 1.0 / total) if total > 0 else 1.0) * lr
        else:
            y = grad - self._prev_grad
            s = self._step_taken
            ys = float(y.dot(s))
            # Pairs with (almost) no positive curvature would make H indefinite; skip them, as torch does.
            new_pair = ys > 1e-10
            if new_pair:
                self._remember(s, y, ys, group["history_size"])
            direction = self._direction(grad, y if new_pair else None)
            t = lr
        if self._prev_grad is None:
            self._prev_grad = grad.clone()
        else:
            self._prev_grad.copy_(grad)
        descent = float(grad.dot(direction)) <= 0  # false only through rounding; then, like torch, stay
        self._step_taken = direction.mul_(t)
        if descent:
            x.add_(self._step_taken.view_as(x))
        return loss

    def _remember(self, s: torch.Tensor, y: torch.Tensor, ys: float, history: int) -> None:
        n = s.numel()
        if self._S is None:
            # Grow the rows as pairs arrive: a short run never pays for 100 of them.
            rows = min(history, 8)
            self._S = s.new_empty(rows, n)
            self._Y = s.new_empty(rows, n)
            # The k x k products are tiny: float64 on the CPU, whatever the device (MPS has no float64).
            self._SY = torch.zeros(history, history, dtype=torch.float64)
            self._YY = torch.zeros(history, history, dtype=torch.float64)
        if self._count < history:
            row = self._count
            self._count += 1
            if row == self._S.shape[0]:
                rows = min(history, 2 * row)
                self._S = torch.cat([self._S, self._S.new_empty(rows - row, n)])
                self._Y = torch.cat([self._Y, self._Y.new_empty(rows - row, n)])
        else:
            # Forget the oldest pair: its row takes the new one, its products leave the matrices.
            row = self._oldest
            self._oldest = (self._oldest + 1) % history
            self._SY[:-1, :-1] = self._SY[1:, 1:].clone()
            self._YY[:-1, :-1] = self._YY[1:, 1:].clone()
        self._S[row] = s
        self._Y[row] = y
        self._gamma = ys / float(y.dot(y))

    def _chronological(self, by_row: torch.Tensor) -> torch.Tensor:
        """Values per row of S and Y (last dim) -> oldest pair first, on the CPU in float64."""
        by_row = by_row.cpu().double()
        return torch.roll(by_row, -self._oldest, dims=-1) if self._oldest else by_row

    def _direction(self, grad: torch.Tensor, new_y: torch.Tensor | None) -> torch.Tensor:
        """-H grad for the stored pairs (plain -grad * scale when there are none)."""
        k = self._count
        if not k:
            return grad.mul(-self._gamma)
        S, Y = self._S[:k], self._Y[:k]
        if new_y is not None:
            # One pass over each history matrix gives the new pair's column of S Y^T and Y Y^T and
            # the projections of the gradient.
            both = torch.stack([new_y, grad])  # (2, n)
            s_products = self._chronological(both @ S.T)  # (2, k)
            y_products = self._chronological(both @ Y.T)
            self._SY[:k, k - 1] = s_products[0]
            self._YY[:k, k - 1] = y_products[0]
            self._YY[k - 1, :k] = y_products[0]
            a, b = s_products[1], y_products[1]
        else:
            a, b = self._chronological(S @ grad), self._chronological(Y @ grad)
        sy, yy, gamma = self._SY[:k, :k], self._YY[:k, :k], self._gamma
        # R is the upper triangle of sy and D its diagonal; the triangular solves read only R.
        # p2 = -R^-1 a;  p1 = R^-T ((D + gamma Y Y^T) R^-1 a - gamma b)
        r_inv_a = torch.linalg.solve_triangular(sy, a.unsqueeze(1), upper=True).squeeze(1)
        u = torch.diagonal(sy) * r_inv_a + gamma * (yy @ r_inv_a) - gamma * b
        p1 = torch.linalg.solve_triangular(sy.mT, u.unsqueeze(1), upper=False).squeeze(1)
        coefficients = torch.stack([p1, -gamma * r_inv_a])  # for S and Y, oldest pair first
        if self._oldest:
            coefficients = torch.roll(coefficients, self._oldest, dims=1)  # back to row order
        coefficients = coefficients.to(device=grad.device, dtype=grad.dtype)
        # -H grad = -(gamma grad + S^T p1 + gamma Y^T p2), p2 = -R^-1 a
        hg = torch.addmv(torch.addmv(grad.mul(gamma), S.T, coefficients[0]), Y.T, coefficients[1])
        return hg.neg_()

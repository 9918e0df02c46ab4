"""L-BFGS for one image tensor, one function evaluation per step, in a handful of large operations.

It computes the same search direction as `torch.optim.LBFGS(max_iter=1, line_search_fn=None)`
(same first step, same rule for keeping curvature pairs, same initial Hessian scaling), but not with
the textbook two-loop recursion: with a history of 100 pairs that recursion is 400 small vector
operations and 200 host syncs per step, which on a busy 2-core CPU cost a fifth of the network's
forward + backward at 256 px (benchmarks/profile_step.py), and on a GPU stall on every sync.

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
        self._S: torch.Tensor | None = None  # rows: steps s_i, in slot order
        self._Y: torch.Tensor | None = None  # rows: gradient changes y_i
        self._SY: torch.Tensor | None = None  # [i, j] = s_i . y_j, float64, by slot
        self._YY: torch.Tensor | None = None  # [i, j] = y_i . y_j
        self._order: list[int] = []  # slots from the oldest pair to the newest
        self._gamma = 1.0  # initial inverse Hessian scale: s.y / y.y of the newest pair
        self._prev_grad: torch.Tensor | None = None
        self._step_taken: torch.Tensor | None = None  # t * d of the last step
        self._iterations = 0

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
            # torch's first step: at most lr, and smaller when the gradient is large
            t = min(1.0, 1.0 / float(grad.abs().sum())) * lr
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
            # Grow the buffers as pairs arrive: a short run never pays for 100 rows.
            rows = min(history, 8)
            self._S = s.new_empty(rows, n)
            self._Y = s.new_empty(rows, n)
            # The k x k products are tiny: float64 on the CPU, whatever the device (MPS has no float64).
            self._SY = torch.zeros(history, history, dtype=torch.float64)
            self._YY = torch.zeros(history, history, dtype=torch.float64)
        if len(self._order) < history:
            slot = len(self._order)
            if slot == self._S.shape[0]:
                rows = min(history, 2 * slot)
                self._S = torch.cat([self._S, self._S.new_empty(rows - slot, n)])
                self._Y = torch.cat([self._Y, self._Y.new_empty(rows - slot, n)])
        else:
            slot = self._order.pop(0)  # overwrite the oldest pair
        self._order.append(slot)
        self._S[slot] = s
        self._Y[slot] = y
        self._gamma = ys / float(y.dot(y))

    def _direction(self, grad: torch.Tensor, new_y: torch.Tensor | None) -> torch.Tensor:
        """-H grad for the stored pairs (plain -grad * scale when there are none)."""
        if not self._order:
            return grad.mul(-self._gamma)
        used = len(self._order)  # slots 0 .. used-1 hold pairs
        S, Y = self._S[:used], self._Y[:used]
        if new_y is not None:
            # One pass over each history matrix gives the new pair's column of S Y^T and Y Y^T and
            # the projections of the gradient.
            both = torch.stack([new_y, grad], dim=1)
            s_products = (S @ both).cpu().double()
            y_products = (Y @ both).cpu().double()
            slot = self._order[-1]
            self._SY[:used, slot] = s_products[:, 0]
            self._YY[:used, slot] = y_products[:, 0]
            self._YY[slot, :used] = y_products[:, 0]
            a_slots, b_slots = s_products[:, 1], y_products[:, 1]
        else:
            a_slots, b_slots = (S @ grad).cpu().double(), (Y @ grad).cpu().double()
        order = torch.tensor(self._order)
        sy = self._SY[order][:, order]
        R = torch.triu(sy)
        D = torch.diag(torch.diagonal(sy))
        YY = self._YY[order][:, order]
        a, b = a_slots[order], b_slots[order]
        gamma = self._gamma
        # p2 = -R^-1 a;  p1 = R^-T ((D + gamma Y Y^T) R^-1 a - gamma b)
        r_inv_a = torch.linalg.solve_triangular(R, a.unsqueeze(1), upper=True).squeeze(1)
        p1 = torch.linalg.solve_triangular(
            R.T, ((D + gamma * YY) @ r_inv_a - gamma * b).unsqueeze(1), upper=False).squeeze(1)
        coeff_s = torch.zeros(used, dtype=torch.float64)
        coeff_y = torch.zeros(used, dtype=torch.float64)
        coeff_s[order] = p1
        coeff_y[order] = -gamma * r_inv_a
        coeff_s = coeff_s.to(device=grad.device, dtype=grad.dtype)
        coeff_y = coeff_y.to(device=grad.device, dtype=grad.dtype)
        # -H grad = -(gamma grad + S^T p1 + gamma Y^T p2), p2 = -R^-1 a
        hg = torch.addmv(torch.addmv(grad.mul(gamma), S.T, coeff_s), Y.T, coeff_y)
        return hg.neg_()

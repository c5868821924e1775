"""Twins of :mod:`bpnet.ops` in PyTorch's own calls.

One fused kernel where the portable operations take several (``addmm``, ReLU
fused into the product, ``threshold_backward``, ``log_softmax``,
``add_(alpha=)``, ``lerp_``, ``addcdiv_``), in place where they allocate, and
without array-api-compat's per-call wrappers, whose conversion of a Python
scalar to a tensor is a blocking host-to-device copy on CUDA.  Results equal
the portable ones to rounding (torch may fuse a multiply-add).  Counted on the
CPU with ``TorchDispatchMode`` (``tests/test_torch_launches.py``): 26 ATen
operations per Adam step of a 784-256-256-10 ReLU net, against 118 for the
portable code.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .._typing import Array
from ..activations import LEAKY_SLOPE
from ..ops import CLIP_EPS, Ops

__all__ = ["TorchOps"]


def _one(c: Any) -> bool:
    return isinstance(c, (int, float)) and c == 1


class TorchOps(Ops):
    """Twins of :mod:`bpnet.ops` in torch's own calls: one fused kernel where the
    portable version takes several (``addmm``, ``threshold_backward``,
    ``add_(alpha=)``, ``addcdiv_``), in place where the portable version
    allocates, and without array-api-compat's per-call wrappers.  Results equal
    the portable ones to rounding (torch may fuse a multiply-add)."""

    inplace = True
    writes_out = True

    def __init__(self) -> None:
        import torch

        self.torch = torch
        # addmm and ReLU in one op where this torch has it (a private name, so
        # looked up, not assumed; the two calls are the fallback)
        self._addmm_relu = getattr(torch, "_addmm_activation", None)
        self._zeros: dict[Any, Any] = {}
        self.F = F = torch.nn.functional
        aten = torch.ops.aten
        slope = LEAKY_SLOPE
        # Every activation and its derivative from the output in torch's own
        # kernels: array-api-compat's maximum/minimum turn the 0.0 of the portable
        # formulas into a tensor, a host-to-device copy on CUDA.
        self._activations = {
            "identity": lambda z: z,
            "relu": lambda z: z.relu_(),
            "tanh": lambda z: z.tanh_(),
            "sigmoid": lambda z: z.sigmoid_(),
            "leaky_relu": lambda z: F.leaky_relu_(z, slope),
            "softplus": F.softplus,
        }
        self._backward = {
            "relu": lambda d, a: aten.threshold_backward(d, a, 0),
            "tanh": aten.tanh_backward,
            "sigmoid": aten.sigmoid_backward,
            "leaky_relu": lambda d, a: aten.leaky_relu_backward(d, a, slope, True),
        }
        self._losses = {
            "cross_entropy": self._cross_entropy,
            "binary_cross_entropy": self._binary_cross_entropy,
            "logistic": self._logistic,
            "mse": self._mse,
        }

    def affine(self, a: Array, W: Array, b: Array, xp: ModuleType) -> Array:
        return self.torch.addmm(b, a, W)

    def affine_activate(self, a: Array, W: Array, b: Array, act: Any, xp: ModuleType) -> Array:
        if act.name == "relu" and self._addmm_relu is not None:
            return self._addmm_relu(b, a, W)  # one kernel (cuBLASLt's epilogue on CUDA)
        return self.activate(self.affine(a, W, b, xp), act, xp)

    def take_rows(self, x: Array, rows: Array, xp: ModuleType) -> Array:
        return x.index_select(0, rows)  # without take's wrap-around of negative indices

    def value_and_delta(self, loss: Any, z: Array, y: Array, out: Any, xp: ModuleType,
                        w: Array | None = None) -> tuple[Array, Array]:
        if w is not None or loss.name not in self._losses:
            return loss.value_and_delta(z, y, out, xp, w)
        return self._losses[loss.name](z, y, out, 1.0 / z.shape[0])

    def _cross_entropy(self, z: Array, y: Array, out: Any, inv_n: float) -> Any:
        # log_softmax is one fused, stable kernel; the delta reuses its output.
        # -sum(y * logp) / n as one product with its scale (beta=0 ignores the
        # 1x1 input).
        logp = self.torch.log_softmax(z, dim=1)
        value = self.torch.addmm(self._zero(logp), y.reshape(1, -1), logp.reshape(-1, 1),
                                 beta=0, alpha=-inv_n).reshape(())
        return value, logp.exp_().sub_(y).mul_(inv_n)

    def _binary_cross_entropy(self, z: Array, y: Array, out: Any, inv_n: float) -> Any:
        # softplus(z) - y z, and its delta sigmoid(z) - y
        value = self.F.softplus(z).sub_(y * z).sum().mul_(inv_n)
        return value, self.torch.sigmoid(z).sub_(y).mul_(inv_n)

    def _logistic(self, z: Array, y: Array, out: Any, inv_n: float) -> Any:
        u = y * z
        u.neg_()
        value = self.F.softplus(u).sum().mul_(inv_n)
        return value, self.torch.sigmoid(u).mul_(y).mul_(-inv_n)

    def _mse(self, z: Array, y: Array, out: Any, inv_n: float) -> Any:
        a = self.activate(z, out, None)  # type: ignore[arg-type]  # z is the fresh output pre-activation
        r = a - y
        flat = r.reshape(-1)
        value = self.torch.vdot(flat, flat).mul_(0.5 * inv_n)
        backward = self._backward.get(out.name)
        delta = r if backward is None else backward(r, a)  # type: ignore[operator]
        return value, delta.mul_(inv_n)

    def keep_output(self, loss: Any, z: Array, xp: ModuleType) -> Array:
        # only the squared error's twin activates z in place
        return z.clone() if loss.name == "mse" else z

    def ones_row(self, delta: Array, xp: ModuleType) -> Array | None:
        return None  # grad_b sums directly

    def _zero(self, like: Array) -> Array:
        key = (like.dtype, like.device)
        zero = self._zeros.get(key)
        if zero is None:
            zero = self._zeros[key] = self.torch.zeros((1, 1), dtype=like.dtype,
                                                       device=like.device)
        return zero

    def activate(self, z: Array, act: Any, xp: ModuleType) -> Array:
        fused = self._activations.get(act.name)
        return act.f(z, xp) if fused is None else fused(z)

    def times_df(self, delta: Array, a: Array, act: Any, xp: ModuleType) -> Array:
        fused = self._backward.get(act.name)
        if fused is not None:
            return fused(delta, a)  # type: ignore[operator]
        return delta.mul_(act.df(a, xp))

    def grad_w(self, a: Array, delta: Array, out: Array | None, xp: ModuleType) -> Array:
        if out is None:
            return a.T @ delta
        return self.torch.mm(a.T, delta, out=out)

    def grad_b(self, ones: Array, delta: Array, out: Array | None, xp: ModuleType) -> Array:
        if out is None:
            return self.torch.sum(delta, dim=0)
        return self.torch.sum(delta, dim=0, out=out)

    def axpby(self, x: Array, a: float, y: Array, b: float, xp: ModuleType) -> Array:
        if not _one(a):
            x.mul_(a)
        return x.add_(y) if _one(b) else x.add_(y, alpha=b)

    def momentum_update(self, p: Array, v: Array, g: Array, mu: float, lr: float,
                        nesterov: bool, xp: ModuleType) -> tuple[Array, Array]:
        v.mul_(mu).add_(g, alpha=-lr)
        if nesterov:
            return p.add_(v, alpha=mu).add_(g, alpha=-lr), v
        return p.add_(v), v

    def adam_update(self, p: Array, m: Array, v: Array, g: Array, b1: float, b2: float,
                    size: float, eps: float, xp: ModuleType) -> tuple[Array, Array, Array]:
        m.lerp_(g, 1.0 - b1)  # b1 m + (1 - b1) g in one kernel
        v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
        return p.addcdiv_(m, v.sqrt().add_(eps), value=-size), m, v

    def sq_norm(self, W: Array, xp: ModuleType) -> Array:
        w = W.reshape(-1)
        return self.torch.vdot(w, w)

    def clip_factor(self, sq_norm: Array, max_norm: float, xp: ModuleType) -> Array:
        # clamp_, not array-api-compat's minimum: its 1.0 would become a tensor (a
        # host-to-device copy on CUDA); a Python number in torch's own ops does not
        return (max_norm / (sq_norm.sqrt() + CLIP_EPS)).clamp_(max=1.0)

    def scale(self, g: Array, c: Array, xp: ModuleType) -> Array:
        return g.mul_(c)

    def epoch_total(self, values: list[Array], sizes: list[int], xp: ModuleType) -> Array:
        # one product at the end of the epoch instead of two operations per step
        torch = self.torch
        stacked = torch.stack(values)
        return torch.dot(stacked, torch.tensor(sizes, dtype=stacked.dtype,
                                               device=stacked.device))

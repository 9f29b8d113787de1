"""Parameters in one flat buffer with named views, so optimizers and kernels touch one array."""
from __future__ import annotations

import numpy as np

from k1core.errors import UserError


class ParamStore:
    """Named parameter arrays that are views into `flat`; gradients are views into `grad`."""

    def __init__(self, arrays: dict[str, np.ndarray], dtype=np.float32):
        self.dtype = np.dtype(dtype)
        self.shapes = {k: tuple(np.shape(v)) for k, v in arrays.items()}
        self.offsets: dict[str, tuple[int, int]] = {}
        pos = 0
        for name, shape in self.shapes.items():
            size = int(np.prod(shape, dtype=np.int64))
            self.offsets[name] = (pos, pos + size)
            pos += size
        self.flat = np.empty(pos, dtype=self.dtype)
        self.grad = np.zeros(pos, dtype=self.dtype)
        self.p = {k: self._view(self.flat, k) for k in self.shapes}
        self.g = {k: self._view(self.grad, k) for k in self.shapes}
        for name, value in arrays.items():
            self.p[name][...] = value

    def _view(self, buf: np.ndarray, name: str) -> np.ndarray:
        a, b = self.offsets[name]
        return buf[a:b].reshape(self.shapes[name])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.p[name]

    def __contains__(self, name: str) -> bool:
        return name in self.p

    @property
    def size(self) -> int:
        """Total number of scalar parameters."""
        return self.flat.size

    def zero_grad(self) -> None:
        self.grad.fill(0.0)

    def mask(self, predicate) -> np.ndarray:
        """Flat 0/1 array selecting the parameters whose (name, shape) satisfy `predicate`."""
        out = np.zeros(self.size, dtype=self.dtype)
        for name, (a, b) in self.offsets.items():
            if predicate(name, self.shapes[name]):
                out[a:b] = 1.0
        return out

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.p.items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy `state` in; names and shapes must match exactly."""
        missing, extra = set(self.p) - set(state), set(state) - set(self.p)
        if missing or extra:
            raise UserError(
                f"checkpoint parameters do not match the model: missing {sorted(missing)[:5]}, "
                f"unexpected {sorted(extra)[:5]}"
            )
        for k, v in state.items():
            if tuple(np.shape(v)) != self.shapes[k]:
                raise UserError(f"checkpoint parameter {k} has shape {np.shape(v)}, model has {self.shapes[k]}")
            self.p[k][...] = v

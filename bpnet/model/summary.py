"""``MLP.summary()``: a per-layer table of shapes and parameter counts, as Keras
prints one."""

from __future__ import annotations

import itertools
from typing import Any

__all__ = ["Summary", "summary"]


class Summary(str):
    """The text of :meth:`MLP.summary`: a ``str`` that a REPL shows as the table
    itself (its ``repr`` is the text), and ``print`` prints."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def _shape(*dims: int | str) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def summary(net: Any) -> Summary:
    """The table of ``net``'s layers (read through its public attributes).

    One row per layer: its name, activation, output shape (``N`` samples),
    the shapes of ``W`` and ``b`` and their parameter count; then the total,
    its memory in the network's dtype, the loss, backend, device and dtype,
    and the kept training state, if any.
    """
    sizes = net.layer_sizes
    acts = [*net.activations, net.output_activation]
    itemsize = 4 if net.dtype_name == "float32" else 8
    rows = [("layer", "activation", "output shape", "W shape", "b shape", "params"),
            ("input", "-", _shape("N", sizes[0]), "-", "-", "0")]
    for l, (n_in, n_out) in enumerate(itertools.pairwise(sizes), start=1):
        kind = "output" if l == len(sizes) - 1 else f"hidden {l}"
        rows.append((kind, acts[l - 1], _shape("N", n_out), _shape(n_in, n_out), _shape(n_out),
                     f"{n_in * n_out + n_out:,}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(row: tuple[str, ...]) -> str:
        cells = [c.ljust(w) for c, w in zip(row[:-1], widths[:-1])] + [row[-1].rjust(widths[-1])]
        return "  ".join(cells)

    rule = "-" * len(line(rows[0]))
    kib = net.n_params * itemsize / 1024
    text = [f"MLP {'-'.join(map(str, sizes))}", rule, line(rows[0]), rule,
            *map(line, rows[1:]), rule,
            f"parameters: {net.n_params:,} ({kib:,.1f} KiB of {net.dtype_name})",
            f"loss: {net.loss}; backend {net.backend} on {net.device}"]
    state = net.training_state
    if state is not None:
        text.append(f"training state: {state['optimizer']}, {state['step']:,} steps, "
                    f"{state['epoch']:,} epochs")
    return Summary("\n".join(text))

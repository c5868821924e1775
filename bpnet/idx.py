"""IDX files, the format of MNIST, Fashion-MNIST and KMNIST: plain or gzipped.

The header (magic, type code, dimensions) is read first; then exactly the data it
announces, in slices, so a truncated or corrupt file (or a gzip stream that does
not inflate) is one clear ``ValueError``, and a header whose dimensions multiply
past any real file is refused by the size check, computed in Python integers
that cannot wrap.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["load_idx"]

# type code -> big-endian dtype, as the IDX format defines them
_IDX_TYPES: dict[int, str] = {
    0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8",
}


_CHUNK = 1 << 24


def _read_idx(fh: Any, name: str) -> np.ndarray:
    """The array of an open IDX stream: the header first, then exactly the data
    it announces, read in slices (a gzip stream's length is not known ahead)."""
    head = fh.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise ValueError(f"{name} is not an IDX file: it does not start with the magic "
                         "bytes 00 00")
    code, ndim = head[2], head[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"{name} has unknown IDX type code 0x{code:02x}; expected one of "
                         + ", ".join(f"0x{c:02x}" for c in _IDX_TYPES))
    raw_dims = fh.read(4 * ndim)
    if ndim == 0 or len(raw_dims) < 4 * ndim:
        raise ValueError(f"{name} has a truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))
    dtype = np.dtype(_IDX_TYPES[code])
    expected = math.prod(dims) * dtype.itemsize  # Python ints: no overflow, unlike np.prod
    data = bytearray()
    while len(data) < expected:
        chunk = fh.read(min(_CHUNK, expected - len(data)))
        if not chunk:
            break
        data += chunk
    trailing = len(fh.read(1)) if len(data) == expected else 0
    if len(data) != expected or trailing:
        held = f"{len(data):,}" + (" or more" if trailing else "")
        raise ValueError(
            f"{name} holds {held} bytes of data but its header announces shape {dims} of "
            f"{dtype.name} ({expected:,} bytes): the file is truncated or corrupt"
        )
    array = np.frombuffer(data, dtype=dtype).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the format of MNIST), plain or gzip-compressed.

    The header is two zero bytes, a type code (0x08 unsigned byte, 0x09 signed
    byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of
    dimensions, then each dimension as a big-endian uint32; the data follow in
    C order, big-endian.  Compression is detected from the content, not the name.

    Returns
    -------
    ndarray
        Of the file's shape, in native byte order.

    Raises
    ------
    FileNotFoundError
        When there is no file at ``path``.
    ValueError
        For a bad header, or a data size that does not match the header
        (truncated or trailing bytes).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no IDX file at {str(path)!r}")
    name = repr(str(path))
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
        fh.seek(0)
        try:
            if not gzipped:
                return _read_idx(fh, name)
            with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
                return _read_idx(gz, name)
        except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            kind = "gzip-compressed IDX file" if gzipped else "IDX file"
            raise ValueError(f"{name} is not a readable {kind} (it is truncated or corrupt: "
                             f"{exc})") from None

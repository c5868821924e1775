"""Reading and writing model files (``.npz``): configuration and weights.

A file holds a format version, the network's configuration as JSON
(:meth:`MLP.get_config`) and every weight as a host array named ``W1``, ``b1``,
``W2``... in the network's dtype.  This module knows files, not networks:
:meth:`MLP.save` and :meth:`MLP.load` turn a network into these values and back.
Nothing is pickled, so loading a file never runs code from it.  Files are
written to a temporary file in the target directory and moved into place with
:func:`os.replace`, so a crash mid-write never leaves a half-written model under
the final name.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FORMAT_VERSION", "read", "write"]

#: Version of the file layout; :func:`load` refuses files from a newer bpnet.
FORMAT_VERSION = 1

_MAGIC = "bpnet_format"


def write(path: str | os.PathLike, config: dict[str, Any],
          params: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
    """Write a model to ``path`` (an ``.npz`` file; the name is used as given).

    Parameters
    ----------
    path : str or path-like
    config : dict
        Plain JSON values (:meth:`MLP.get_config`).
    params : sequence of (W, b) host arrays

    Raises
    ------
    TypeError
        When ``path`` is not a string or path-like.
    FileNotFoundError
        When the directory does not exist.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a string or os.PathLike, got {type(path).__name__}")
    target = Path(path)
    directory = target.parent
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot save to {str(target)!r}: directory {str(directory)!r} "
                                "does not exist")
    arrays: dict[str, np.ndarray] = {
        _MAGIC: np.array(FORMAT_VERSION, dtype=np.int64),
        "config": np.array(json.dumps(config)),
    }
    for l, (W, b) in enumerate(params, start=1):
        arrays[f"W{l}"] = np.asarray(W)
        arrays[f"b{l}"] = np.asarray(b)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read(path: str | os.PathLike) -> tuple[dict[str, Any], list[tuple[np.ndarray, np.ndarray]]]:
    """The configuration and weights of a file written by :func:`write`.

    Raises
    ------
    TypeError
        When ``path`` is not a string or path-like.
    FileNotFoundError
        When there is no file at ``path``.
    ValueError
        When the file is not a complete bpnet model file.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a string or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no bpnet model file at {str(path)!r}")
    what = f"{str(path)!r} is not a bpnet model file"
    # The file is opened here, not by np.load, so that it is closed on every path:
    # np.load leaks its handle when a truncated archive fails to open.
    with open(path, "rb") as fh:
        try:
            data = np.load(fh, allow_pickle=False)
        except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
            raise ValueError(f"{what} (or it is truncated or corrupt): {exc}") from None
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(f"{what}: it holds a single array, not an .npz archive")
        try:
            with data:
                contents = {name: data[name] for name in data.files}
        except (zipfile.BadZipFile, EOFError, ValueError, OSError, zlib.error) as exc:
            raise ValueError(f"{what} (or it is truncated or corrupt): {exc}") from None
    if _MAGIC not in contents or "config" not in contents:
        raise ValueError(f"{what}: it lacks the '{_MAGIC}' and 'config' entries")
    version = int(contents[_MAGIC])
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} was written in bpnet file format {version}; this bpnet reads up "
            f"to format {FORMAT_VERSION}: upgrade bpnet to load it"
        )
    try:
        config = json.loads(str(contents["config"]))
        sizes = config["layer_sizes"]
        n_layers = len(sizes) - 1
        params = [(contents[f"W{l}"], contents[f"b{l}"]) for l in range(1, n_layers + 1)]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{what}: its configuration or weights are incomplete ({exc})") from None
    return config, params

"""Reading and writing model files (``.npz``): configuration, weights, extras.

A file is a zip archive of ``.npy`` members, as :func:`numpy.savez` writes it:

* ``bpnet_format``: the format version, an integer scalar;
* ``config``: the network's configuration as a JSON string
  (:meth:`MLP.get_config`);
* ``W1``, ``b1``, ``W2``...: the weights, host arrays in the configuration's dtype;
* optionally ``extra`` (JSON metadata) and ``extra.<name>`` arrays: what a later
  caller stores beside the weights (an optimizer state, a generator's state),
  passed to :func:`write` as an :class:`Extra`.

This module knows files, not networks: :meth:`MLP.save` and :meth:`MLP.load`
turn a network into these values and back.

Writing is atomic: a temporary file in the target directory, flushed to disk,
then moved into place with :func:`os.replace`, so a crash mid-write never leaves
a half-written model under the final name.  The new file gets the mode of the
file it replaces, or else the mode the process's umask gives new files.

Reading is safe on files from anyone:

* nothing is unpickled (object arrays are refused), so loading runs no code;
* only the members bpnet needs are read; any other member is never opened;
* the version and the configuration are read first, within fixed bounds
  (:data:`MAX_CONFIG_CHARS`); then each weight's ``.npy`` header (dtype, shape,
  memory order) is checked against the configuration, and its declared size
  against the archive's directory and the file's length, before any weight
  data is read: a small file cannot claim large layers;
* data is read into arrays of exactly the checked size: memory stays within the
  size of the weights the file really holds (a compressed member may inflate
  at most :data:`MAX_INFLATION` times), plus the bounded configuration;
* every malformed, truncated or foreign file raises one :class:`ValueError`
  that says what is wrong with it.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "MAX_CONFIG_CHARS",
    "MAX_INFLATION",
    "Extra",
    "Stored",
    "read",
    "write",
]

#: Version of the file layout; :func:`read` refuses files from a newer bpnet.
FORMAT_VERSION = 1

#: Longest configuration (and extra metadata) JSON text a file may hold.
MAX_CONFIG_CHARS = 1 << 20

#: A compressed member may declare at most this many times its compressed size
#: (plus 64 KiB): a zip bomb is refused before it is inflated.  bpnet writes
#: members uncompressed.
MAX_INFLATION = 16

_MAGIC = "bpnet_format"
_FLOATS = ("float32", "float64")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_MAX_HEADER = 10_000  # NumPy's own limit on an .npy header
_CHUNK = 1 << 20
# Everything a damaged archive or member can raise while it is read.
_BROKEN = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, zlib.error,
           NotImplementedError, RuntimeError, struct.error, UnicodeError, OverflowError,
           KeyError, TypeError, SyntaxError, RecursionError)


@dataclass(frozen=True)
class Extra:
    """What a file holds beside the configuration and the weights.

    Attributes
    ----------
    meta : dict
        Plain JSON values (at most :data:`MAX_CONFIG_CHARS` characters as JSON).
    arrays : dict of str to numpy.ndarray
        Named host arrays of booleans, integers or floats; names of letters,
        digits, ``_``, ``.`` and ``-`` (at most 64 characters).
    """

    meta: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


class Stored(NamedTuple):
    """What :func:`read` found in a file."""

    config: dict[str, Any]
    params: list[tuple[np.ndarray, np.ndarray]]
    extra: Extra | None


#: What a caller of :func:`read` expects of the extra arrays, given the file's
#: extra metadata: ``{name: (shape, dtype name)}``.
ExpectExtra = Callable[[dict[str, Any]], Mapping[str, tuple[Sequence[int], str]]]


# --- writing ------------------------------------------------------------------------------


def _json_text(what: str, value: Any) -> str:
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must hold plain JSON values: {exc}") from None
    if len(text) > MAX_CONFIG_CHARS:
        raise ValueError(f"{what} is {len(text):,} characters of JSON; at most "
                         f"{MAX_CONFIG_CHARS:,} can be stored")
    return text


def _extra_members(extra: Extra) -> dict[str, np.ndarray]:
    if not isinstance(extra, Extra):
        raise TypeError(f"extra must be a bpnet.serialization.Extra, got {type(extra).__name__}")
    members = {"extra": np.array(_json_text("extra.meta", extra.meta))}
    for name, array in extra.arrays.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"extra array name {name!r} must be 1-64 letters, digits, '_', "
                             "'.' or '-' (not starting with '.' or '-')")
        host = np.asarray(array)
        if host.dtype.kind not in "biuf":
            raise TypeError(f"extra array {name!r} must hold booleans, integers or floats, got "
                            f"dtype {host.dtype}")
        members[f"extra.{name}"] = host
    return members


def _new_file_mode(target: Path) -> int:
    """The replaced file's permission bits, or those the umask gives a new file."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return -1  # the temporary file was created through the umask already


def _create_temporary(target: Path) -> tuple[int, Path]:
    # Not tempfile.mkstemp: its files are mode 0600 whatever the umask says.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX; elsewhere a directory cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write(path: str | os.PathLike, config: dict[str, Any],
          params: Sequence[tuple[np.ndarray, np.ndarray]], extra: Extra | None = None) -> None:
    """Write a model to ``path`` (an ``.npz`` file; the name is used as given).

    Parameters
    ----------
    path : str or path-like
    config : dict
        Plain JSON values (:meth:`MLP.get_config`).
    params : sequence of (W, b) host arrays
    extra : Extra, optional
        Metadata and arrays stored beside the weights; :func:`read` returns them
        when asked to.

    Raises
    ------
    TypeError
        When ``path`` is not a string or path-like, or ``config``/``extra`` hold
        what cannot be stored.
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
        "config": np.array(_json_text("config", config)),
    }
    for l, (W, b) in enumerate(params, start=1):
        arrays[f"W{l}"] = np.asarray(W)
        arrays[f"b{l}"] = np.asarray(b)
    if extra is not None:
        arrays.update(_extra_members(extra))
    mode = _new_file_mode(target)
    fd, tmp = _create_temporary(target)
    try:
        with os.fdopen(fd, "wb") as fh:
            if mode >= 0 and hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), mode)
            np.savez(fh, **arrays)  # type: ignore[arg-type]
            fh.flush()
            os.fsync(fh.fileno())
        if mode >= 0 and not hasattr(os, "fchmod"):
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


# --- reading ------------------------------------------------------------------------------


class _Header(NamedTuple):
    info: zipfile.ZipInfo
    offset: int  # bytes of magic and header before the data
    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype


class _Archive:
    """The members of one open archive, each read only after its checks."""

    def __init__(self, zf: zipfile.ZipFile, size: int, what: str) -> None:
        self.zf = zf
        self.size = size  # of the whole file
        self.what = what
        self.members = {info.filename: info for info in zf.infolist()}

    def fail(self, reason: str) -> ValueError:
        return ValueError(f"{self.what}: {reason}")

    def header(self, name: str) -> _Header:
        info = self.members.get(f"{name}.npy")
        if info is None:
            raise self.fail(f"it has no '{name}' entry")
        if info.flag_bits & 0x1:
            raise self.fail(f"its '{name}' entry is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise self.fail(f"its '{name}' entry uses an unsupported compression "
                            f"(method {info.compress_type})")
        if info.header_offset + info.compress_size > self.size:
            raise self.fail(f"its '{name}' entry claims {info.compress_size:,} bytes that the "
                            f"file ({self.size:,} bytes) does not hold: it is truncated")
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size != info.compress_size:
                raise self.fail(f"its '{name}' entry has inconsistent sizes")
        elif info.file_size > MAX_INFLATION * info.compress_size + (1 << 16):
            raise self.fail(f"its '{name}' entry would inflate {info.compress_size:,} bytes to "
                            f"{info.file_size:,} (more than {MAX_INFLATION}x): refused")
        with self.zf.open(info) as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(
                    fh, max_header_size=_MAX_HEADER)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(
                    fh, max_header_size=_MAX_HEADER)
            else:
                raise self.fail(f"its '{name}' entry is .npy version {version}, which bpnet "
                                "does not write")
            offset = fh.tell()
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
            raise self.fail(f"its '{name}' entry holds {dtype} values (pickled objects or "
                            "records), which bpnet never writes and does not load")
        expected = offset + int(np.prod(shape, dtype=object)) * dtype.itemsize
        if info.file_size != expected:
            raise self.fail(f"its '{name}' entry declares shape {shape} of {dtype} "
                            f"({expected - offset:,} bytes) but holds {info.file_size - offset:,}")
        return _Header(info, offset, tuple(shape), bool(fortran), dtype)

    def checked(self, name: str, shape: tuple[int, ...], kinds: str, need: str,
                itemsize: int | None = None) -> _Header:
        """The header of ``name``, refused unless it has ``shape`` and a dtype of
        one of ``kinds`` (and ``itemsize``); ``need`` says what was expected."""
        h = self.header(name)
        if h.dtype.kind not in kinds or (itemsize is not None and h.dtype.itemsize != itemsize):
            raise self.fail(f"its '{name}' entry holds {h.dtype} values; expected {need}")
        if h.shape != shape:
            raise self.fail(f"its '{name}' entry has shape {h.shape}; expected {need} of shape "
                            f"{shape}")
        return h

    def data(self, h: _Header) -> np.ndarray:
        """The array of a checked header, read into memory of exactly its size."""
        flat_shape = h.shape[::-1] if h.fortran else h.shape
        out = np.empty(flat_shape, dtype=h.dtype)
        view = memoryview(out.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
        with self.zf.open(h.info) as fh:
            fh.read(h.offset)
            done = 0
            while done < len(view):  # in slices: a compressed member never holds two copies
                got = fh.readinto(view[done:done + _CHUNK])  # type: ignore[attr-defined]
                if not got:
                    raise self.fail(f"its '{h.info.filename[:-4]}' entry is truncated")
                done += got
            fh.read(1)  # reaching the end checks the member's CRC
        out = out.T if h.fortran else out
        return out.astype(h.dtype.newbyteorder("="), copy=False)

    def text(self, name: str) -> str:
        h = self.checked(name, (), "U", "a JSON string")
        if h.dtype.itemsize > 4 * MAX_CONFIG_CHARS:
            raise self.fail(f"its '{name}' entry is longer than {MAX_CONFIG_CHARS:,} characters")
        return str(self.data(h)[()])

    def json(self, name: str) -> dict[str, Any]:
        try:
            value = json.loads(self.text(name))
        except (json.JSONDecodeError, RecursionError) as exc:
            raise self.fail(f"its '{name}' entry is not valid JSON ({exc})") from None
        if not isinstance(value, dict):
            raise self.fail(f"its '{name}' entry is a JSON {type(value).__name__}, not an object")
        return value


def _version(archive: _Archive, path: Path) -> int:
    h = archive.checked(_MAGIC, (), "biuf", "an integer format version")
    if h.dtype.itemsize > 16:
        raise archive.fail("its format version is not a plain number")
    value = archive.data(h)[()]
    if h.dtype.kind not in "iu":
        raise archive.fail(f"its format version {value.item()!r} ({h.dtype}) is not an integer")
    version = int(value)
    if version < 1:
        raise archive.fail(f"its format version {version} is not one bpnet ever wrote")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} was written in bpnet file format {version}; this bpnet reads up "
            f"to format {FORMAT_VERSION}: upgrade bpnet to load it"
        )
    return version


def _weight_shapes(archive: _Archive, config: dict[str, Any]) -> list[tuple[int, ...]]:
    sizes, dtype = config.get("layer_sizes"), config.get("dtype")
    if (not isinstance(sizes, list) or len(sizes) < 2
            or not all(type(s) is int and s >= 1 for s in sizes)):
        raise archive.fail(f"its configuration's layer_sizes {str(sizes)[:80]!r} is not a list "
                           "of at least two positive integers")
    if len(sizes) - 1 > len(archive.members):  # bounds the work by the archive's own size
        raise archive.fail(f"its configuration has {len(sizes) - 1} layers, whose weights need "
                           f"{2 * (len(sizes) - 1)} entries, but the archive holds only "
                           f"{len(archive.members)} entries in all")
    if dtype not in _FLOATS:
        raise archive.fail(f"its configuration's dtype {str(dtype)[:40]!r} is not one of "
                           f"{', '.join(_FLOATS)}")
    shapes = []
    for n_in, n_out in itertools.pairwise(sizes):
        shapes += [(n_in, n_out), (n_out,)]
    return shapes


def _read_extra(archive: _Archive, expect: ExpectExtra) -> Extra | None:
    if "extra.npy" not in archive.members:
        return None
    meta = archive.json("extra")
    try:
        wanted = {str(name): (tuple(int(n) for n in shape), np.dtype(dtype))
                  for name, (shape, dtype) in dict(expect(meta)).items()}
    except (TypeError, ValueError, KeyError) as exc:
        raise archive.fail(f"its extra metadata is not what was expected ({exc})") from None
    headers = {}
    for name, (shape, dtype) in wanted.items():
        h = archive.checked(f"extra.{name}", shape, dtype.kind, f"{dtype} values",
                            dtype.itemsize)
        headers[name] = h
    return Extra(meta, {name: archive.data(h) for name, h in headers.items()})


def read(path: str | os.PathLike, *, extra: ExpectExtra | None = None) -> Stored:
    """The configuration and weights (and optionally extras) of a file written by
    :func:`write`, checked before anything is read (see the module docstring).

    Parameters
    ----------
    path : str or path-like
    extra : callable, optional
        ``extra(meta) -> {name: (shape, dtype name)}``: given the file's extra
        metadata, the extra arrays to read and what each must be; each is
        checked against that before its data is read.  Without it no extra
        member is read, and :attr:`Stored.extra` is None (as it is for a file
        without extras).

    Returns
    -------
    Stored
        ``config`` (dict), ``params`` (list of (W, b) NumPy arrays of the shapes
        and dtype the configuration names), ``extra`` (:class:`Extra` or None).

    Raises
    ------
    TypeError
        When ``path`` is not a string or path-like.
    FileNotFoundError
        When there is no file at ``path``.
    ValueError
        When the file is not a complete, well-formed bpnet model file.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a string or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no bpnet model file at {str(path)!r}")
    what = f"{str(path)!r} is not a bpnet model file"
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        start = fh.read(6)
        fh.seek(0)
        if start == b"\x93NUMPY":
            raise ValueError(f"{what}: it holds a single .npy array, not an .npz archive")
        try:
            zf = zipfile.ZipFile(fh)
        except _BROKEN as exc:  # e.g. a damaged header asking for zip version 6.4
            raise ValueError(f"{what}: it is not an .npz (zip) archive, or it is truncated "
                             f"({exc})") from None
        try:
            with zf:
                archive = _Archive(zf, size, what)
                if f"{_MAGIC}.npy" not in archive.members:
                    raise archive.fail(f"it lacks the '{_MAGIC}' and 'config' entries")
                _version(archive, path)
                config = archive.json("config")
                shapes = _weight_shapes(archive, config)
                dtype = np.dtype(config["dtype"])
                names = [f"{p}{l}" for l in range(1, len(shapes) // 2 + 1) for p in "Wb"]
                headers = [archive.checked(n, s, "f", f"{dtype} weights", dtype.itemsize)
                           for n, s in zip(names, shapes)]
                arrays = [archive.data(h) for h in headers]
                found = None if extra is None else _read_extra(archive, extra)
        except ValueError as exc:
            if str(exc).startswith((what, repr(str(path)))):
                raise
            raise ValueError(f"{what} (or it is truncated or corrupt): {exc}") from None
        except _BROKEN as exc:
            raise ValueError(f"{what} (or it is truncated or corrupt): "
                             f"{type(exc).__name__}: {exc}") from None
    params = list(zip(arrays[0::2], arrays[1::2]))
    return Stored(config, params, found)

"""Model files from anyone: every malformed file is one clear ``ValueError``
raised before bpnet allocates what the file claims; pickles stay refused; what
loads is exactly what was saved.  Saved files honour the umask."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import bpnet
from bpnet import serialization
from bpnet.serialization import Extra

CONFIG = {"layer_sizes": [3, 4, 2], "activation": "tanh", "loss": "cross_entropy",
          "output_activation": "softmax", "backend": "numpy", "dtype": "float64", "seed": 0,
          "tf32": None}


# --- building files member by member --------------------------------------------------------


def npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=isinstance(array, np.ndarray) and array.dtype.hasobject)
    return buf.getvalue()


def npy_header(descr: str, shape: tuple, fortran: bool = False, data: bytes = b"") -> bytes:
    """An .npy header that claims ``shape`` of ``descr``, followed by ``data``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": fortran, "shape": shape})
    return buf.getvalue() + data  # the magic string, then the header


def members(config=None, params=None, version=1) -> dict[str, bytes]:
    """The members of a well-formed model file (config and weights given or CONFIG's)."""
    config = CONFIG if config is None else config
    if params is None:
        params = bpnet.MLP(**config).params
    out = {"bpnet_format.npy": npy(np.array(version)),
           "config.npy": npy(np.array(json.dumps(config)))}
    for l, (W, b) in enumerate(params, start=1):
        out[f"W{l}.npy"], out[f"b{l}.npy"] = npy(np.asarray(W)), npy(np.asarray(b))
    return out


def archive(path: Path, content: dict[str, bytes], compression=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in content.items():
            zf.writestr(name, data)
    return path


def without(content: dict[str, bytes], *names: str) -> dict[str, bytes]:
    return {k: v for k, v in content.items() if k not in names}


def assert_same_net(net, config, params):
    assert net.get_config() == config
    for (W, b), (W0, b0) in zip(net.params, params):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)


# --- the classes of hostile file ---------------------------------------------------------------


BIG = dict(CONFIG, layer_sizes=[8000, 8000, 4], dtype="float32")
HUGE = dict(CONFIG, layer_sizes=[100_000, 100_000, 2])


def hostile_files() -> dict[str, tuple[dict[str, bytes], str]]:
    """name -> (members, what the error must say)."""
    good = members()
    big_header = {"W1.npy": npy_header("<f8", (100_000, 100_000)),
                  "b1.npy": npy_header("<f8", (100_000,)),
                  "W2.npy": npy_header("<f8", (100_000, 2)), "b2.npy": npy_header("<f8", (2,))}
    cases = {
        # a 2 KB file claiming large layers, with no weights at all
        "claims big layers": ({**without(good, "W1.npy", "b1.npy", "W2.npy", "b2.npy"),
                               "config.npy": npy(np.array(json.dumps(BIG)))},
                              "it has no 'W1' entry"),
        # headers that match the claim, and no data behind them
        "headers without data": ({**good, "config.npy": npy(np.array(json.dumps(HUGE))),
                                  **big_header},
                                 r"declares shape \(100000, 100000\) of float64 "
                                 r"\(80,000,000,000 bytes\) but holds 0"),
        "version 1.5": ({**good, "bpnet_format.npy": npy(np.array(1.5))},
                        r"format version 1.5 \(float64\) is not an integer"),
        "version string": ({**good, "bpnet_format.npy": npy(np.array("1"))},
                           "expected an integer format version"),
        "version array": ({**good, "bpnet_format.npy": npy(np.array([1, 1]))},
                          r"shape \(2,\); expected an integer format version"),
        "version 0": ({**good, "bpnet_format.npy": npy(np.array(0))}, "format version 0"),
        "version bool": ({**good, "bpnet_format.npy": npy(np.array(True))}, "not an integer"),
        "newer version": ({**good, "bpnet_format.npy": npy(np.array(2))}, "upgrade bpnet"),
        "no version": (without(good, "bpnet_format.npy"), "lacks the 'bpnet_format'"),
        "no config": (without(good, "config.npy"), "no 'config' entry"),
        "pickled config": ({**good, "config.npy": npy(np.array([CONFIG], dtype=object))},
                           "pickled objects"),
        "pickled weights": ({**good, "W1.npy": npy(np.array([[None] * 4] * 3, dtype=object))},
                            "pickled objects"),
        "record weights": ({**good, "W1.npy": npy(np.zeros((3, 4), dtype=[("a", "<f8")]))},
                           "records"),
        "config not JSON": ({**good, "config.npy": npy(np.array("{layer_sizes"))},
                            "not valid JSON"),
        "config a list": ({**good, "config.npy": npy(np.array("[1, 2]"))},
                          "a JSON list, not an object"),
        "config nested deep": ({**good, "config.npy": npy(np.array("[" * 200_000))},
                               "not valid JSON"),
        "config claims 1.6 GB": ({**good, "config.npy": npy_header("<U400000000", ())},
                               "declares shape"),
        "config too long": ({**good, "config.npy": npy(np.array(" " * (1 << 20) + "{}"))},
                            "longer than 1,048,576 characters"),
        "layer sizes text": ({**good, "config.npy": npy(np.array(json.dumps(
            dict(CONFIG, layer_sizes="3,4,2"))))}, "not a list of at least two positive"),
        "layer sizes bool": ({**good, "config.npy": npy(np.array(json.dumps(
            dict(CONFIG, layer_sizes=[3, True, 2]))))}, "not a list of at least two positive"),
        "dtype float16": ({**good, "config.npy": npy(np.array(json.dumps(
            dict(CONFIG, dtype="float16"))))}, "dtype 'float16' is not one of"),
        "missing weight": (without(good, "b2.npy"), "no 'b2' entry"),
        "wrong shape": ({**good, "W2.npy": npy(np.zeros((4, 3)))},
                        r"'W2' entry has shape \(4, 3\); expected float64 weights of shape"),
        "wrong dtype": ({**good, "W1.npy": npy(np.zeros((3, 4), np.float32))},
                        "holds float32 values; expected float64 weights"),
        "integer weights": ({**good, "b1.npy": npy(np.zeros(4, np.int64))},
                            "holds int64 values"),
        "nan weights": ({**good, "W1.npy": npy(np.full((3, 4), np.nan))},
                        "holds weights bpnet cannot use: W1 contains NaN"),
        "unknown activation": ({**good, "config.npy": npy(np.array(json.dumps(
            dict(CONFIG, activation="relux"))))}, "cannot build: unknown activation 'relux'"),
        "backend not bpnet's": ({**good, "config.npy": npy(np.array(json.dumps(
            dict(CONFIG, backend="os"))))}, "cannot build: unknown backend 'os'"),
        "unknown key": ({**good, "config.npy": npy(np.array(json.dumps(
            dict(CONFIG, hook="rm -rf")))) }, "cannot build.*hook"),
        "cross-entropy on one unit": (members(dict(CONFIG, layer_sizes=[3, 4, 1]), [
            (np.zeros((3, 4)), np.zeros(4)), (np.zeros((4, 1)), np.zeros(1))]),
            "needs at least 2 output units"),
        "npy version 3": ({**good, "W1.npy": b"\x93NUMPY\x03\x00" + good["W1.npy"][8:]},
                          r"version \(3, 0\)"),
        "bad npy header": ({**good, "W1.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': 1,}   \n"},
                           "truncated or corrupt"),
    }
    return cases


@pytest.mark.parametrize("case", sorted(hostile_files()))
def test_a_malformed_file_is_one_clear_value_error(tmp_path, case):
    content, match = hostile_files()[case]
    path = archive(tmp_path / "m.npz", content)
    with pytest.raises(ValueError, match=match) as info:
        bpnet.MLP.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_members_bpnet_does_not_need_are_never_read(tmp_path, monkeypatch):
    good = members()
    path = archive(tmp_path / "m.npz", {**good, "junk.npy": npy_header("<f8", (10**12,)),
                                        "evil.npy": npy(np.array([print], dtype=object))})
    opened = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, *args, **kwargs):
        opened.append(getattr(name, "filename", name))
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    net = bpnet.MLP.load(path)
    assert_same_net(net, CONFIG, bpnet.MLP(**CONFIG).params)
    assert {"junk.npy", "evil.npy"}.isdisjoint(opened)


def test_headers_are_checked_before_any_weight_data_is_read(tmp_path, monkeypatch):
    # W1 is well formed, b2 is not: W1's data must not be read before b2 is refused.
    path = archive(tmp_path / "m.npz", {**members(), "b2.npy": npy(np.zeros(3))})
    reads = []
    real = serialization._Archive.data
    monkeypatch.setattr(serialization._Archive, "data",
                        lambda self, h: reads.append(h.info.filename) or real(self, h))
    with pytest.raises(ValueError, match="'b2' entry has shape"):
        bpnet.MLP.load(path)
    assert reads == ["bpnet_format.npy", "config.npy"]


def patch_directory(path: Path, name: str, offset: int, value: bytes) -> None:
    """Overwrite bytes of ``name``'s entry in the archive's central directory."""
    raw = bytearray(path.read_bytes())
    entry = raw.find(b"PK\x01\x02")
    while raw[entry + 46: entry + 46 + len(name)] != name.encode():
        entry = raw.find(b"PK\x01\x02", entry + 1)
    raw[entry + offset: entry + offset + len(value)] = value
    path.write_bytes(bytes(raw))


def test_directory_sizes_the_file_cannot_hold_are_refused(tmp_path):
    path = archive(tmp_path / "m.npz", members())
    patch_directory(path, "W1.npy", 20, (10**9).to_bytes(4, "little") * 2)  # both sizes
    with pytest.raises(ValueError, match="'W1' entry claims 1,000,000,000 bytes that the file"):
        bpnet.MLP.load(path)


def test_zip_bombs_are_refused_and_honest_compression_loads(tmp_path):
    net = bpnet.MLP(**CONFIG)
    bomb = {**members(dict(CONFIG, layer_sizes=[1000, 1000, 2])),
            "W1.npy": npy(np.zeros((1000, 1000)))}
    path = archive(tmp_path / "bomb.npz", bomb, compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(ValueError, match=r"would inflate .* \(more than 16x\): refused"):
        bpnet.MLP.load(path)
    honest = archive(tmp_path / "zipped.npz", members(), compression=zipfile.ZIP_DEFLATED)
    assert_same_net(bpnet.MLP.load(honest), CONFIG, net.params)
    other = archive(tmp_path / "bz2.npz", members(), compression=zipfile.ZIP_BZIP2)
    with pytest.raises(ValueError, match="unsupported compression"):
        bpnet.MLP.load(other)
    locked = archive(tmp_path / "locked.npz", members())
    patch_directory(locked, "W1.npy", 8, b"\x01\x00")  # the "encrypted" flag
    with pytest.raises(ValueError, match="'W1' entry is encrypted"):
        bpnet.MLP.load(locked)


def test_files_that_are_not_archives(tmp_path):
    single = tmp_path / "single.npy"
    np.save(single, np.ones(3))
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x80\x04K\x01." + bytes(200))  # a pickle, not a zip
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    for path, match in ((single, "single .npy array"), (garbage, r"not an .npz \(zip\)"),
                        (empty, r"not an .npz \(zip\)")):
        with pytest.raises(ValueError, match=match) as info:
            bpnet.MLP.load(path)
        assert "allow_pickle" not in str(info.value)  # NumPy's advice does not apply


def test_other_byte_orders_and_fortran_order_load_exactly(tmp_path):
    net = bpnet.MLP(**CONFIG)
    (W1, _), (W2, b2) = [(np.asarray(W), np.asarray(b)) for W, b in net.params]
    content = {**members(), "W1.npy": npy(np.asfortranarray(W1)),
               "W2.npy": npy(W2.astype(">f8")), "b2.npy": npy(b2.astype(">f8"))}
    loaded = bpnet.MLP.load(archive(tmp_path / "m.npz", content))
    assert_same_net(loaded, CONFIG, net.params)
    assert all(t.dtype.isnative and t.flags.c_contiguous for pair in loaded.params for t in pair)


# --- memory: a regression fails the test, not the machine --------------------------------------


_LOAD_UNDER_LIMIT = textwrap.dedent("""
    import resource, sys
    import numpy as np
    import bpnet

    def vm_bytes():
        with open("/proc/self/status") as fh:
            return next(int(l.split()[1]) * 1024 for l in fh if l.startswith("VmSize:"))

    limit = vm_bytes() + int(sys.argv[1]) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    try:
        np.ones(int(sys.argv[1]) * 2**20 // 8 + 2**20)   # the limit must bite
        print("limit does not bite")
    except MemoryError:
        pass
    for path in sys.argv[2:]:
        try:
            bpnet.MLP.load(path)
            print(path, "loaded")
        except ValueError:
            print(path, "ValueError")
        except MemoryError:
            print(path, "MemoryError")
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")
def test_hostile_files_load_within_a_memory_limit(tmp_path):
    paths = []
    for case in ("claims big layers", "headers without data", "config claims 1.6 GB",
                 "config nested deep"):
        paths.append(archive(tmp_path / f"{len(paths)}.npz", hostile_files()[case][0]))
    # 256 MB of zeros that deflate to 250 KB: the bomb would not fit under the limit.
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members(BIG, [(np.zeros((1, 1)), np.zeros(1))] * 2).items():
            if not name.startswith(("W", "b")):
                zf.writestr(name, data)
        for name, shape in (("W1", (8000, 8000)), ("b1", (8000,)), ("W2", (8000, 4)),
                            ("b2", (4,))):
            with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                fh.write(npy_header("<f4", shape))
                n = int(np.prod(shape)) * 4
                for lo in range(0, n, 1 << 24):
                    fh.write(bytes(min(1 << 24, n - lo)))
    paths.append(bomb)
    junk = archive(tmp_path / "junk.npz", {**members(), "junk.npy": npy_header("<f8", (10**11,))})
    paths.append(junk)
    proc = subprocess.run([sys.executable, "-c", _LOAD_UNDER_LIMIT, "96", *map(str, paths)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "limit does not bite" not in lines
    assert lines == [f"{p} ValueError" for p in paths[:-1]] + [f"{junk} loaded"], proc.stdout


# --- property-based: any damage, any hostile archive ---------------------------------------------


PROPERTY = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


def _load_outcome(path: Path, config: dict, params) -> None:
    """The two allowed outcomes: bpnet's own ValueError, or exactly what was saved."""
    try:
        net = bpnet.MLP.load(path)
    except ValueError as exc:
        assert str(path) in str(exc)
        event("refused")
        return
    event("loaded")
    assert_same_net(net, config, params)


@PROPERTY
@given(data=st.data())
def test_damaged_files_either_fail_cleanly_or_load_exactly(tmp_path_factory, data):
    net = bpnet.MLP(**CONFIG)
    path = tmp_path_factory.mktemp("damaged") / "m.npz"
    net.save(path)
    raw = bytearray(path.read_bytes())
    how = data.draw(st.sampled_from(["flip", "truncate", "insert", "overwrite"]))
    at = data.draw(st.integers(0, len(raw) - 1))
    if how == "flip":
        for i in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=8)):
            raw[i] ^= data.draw(st.integers(1, 255))
    elif how == "truncate":
        del raw[at:]
    elif how == "insert":
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=64))
    else:
        chunk = data.draw(st.binary(min_size=1, max_size=64))
        raw[at:at + len(chunk)] = chunk
    path.write_bytes(bytes(raw))
    _load_outcome(path, CONFIG, net.params)


#: For each part of a file: hostile values (some of which may happen to be valid).
_HOSTILE = {
    "version": st.sampled_from([np.array(1.0), np.array(2), np.array(-1), np.array("1"),
                                np.array([1]), np.array(True)]),
    "layer_sizes": st.one_of(st.lists(st.integers(-2, 6), max_size=4),
                             st.lists(st.integers(10**6, 10**12), min_size=2, max_size=3),
                             st.sampled_from(["3,4,2", None, 3, [3.0, 4.0, 2.0], [3, True, 2]])),
    "activation": st.sampled_from(["relux", None, 7, ["tanh"]]),
    "loss": st.sampled_from(["hinge", "mse", None]),
    "output_activation": st.sampled_from(["tanh", "sigmoid", 3]),
    "backend": st.sampled_from(["os", 1, "tensorflow", None]),
    "dtype": st.sampled_from(["float16", "object", "int64", None]),
    "seed": st.sampled_from([-1, 2.5, "0", None]),
    "tf32": st.sampled_from(["yes", 1, [True], None, False]),
    "weights": st.tuples(st.sampled_from(["W1", "b1", "W2", "b2"]),
                         st.sampled_from(["missing", "header", "nan", "inf", "1e39"])),
}
_descr = st.sampled_from(["<f8", ">f8", "<f4", "<i8", "|b1", "|O", "<c16", "<U3"])
_shape = st.lists(st.integers(0, 10**9), max_size=3).map(tuple)


@PROPERTY
@given(sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4),
       activation=st.sampled_from(["tanh", "relu", "sigmoid"]),
       loss=st.sampled_from(["mse", "binary_cross_entropy", "logistic"]),
       dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 99),
       broken=st.sets(st.sampled_from(sorted(_HOSTILE)), max_size=2),
       junk=st.lists(st.tuples(st.text("abcW12.", min_size=1, max_size=6), _descr, _shape),
                     max_size=3),
       data=st.data())
def test_generated_archives_either_fail_cleanly_or_load_as_written(
        tmp_path_factory, sizes, activation, loss, dtype, seed, broken, junk, data):
    """A valid file with up to two parts made hostile, and junk members beside it:
    with no part broken it loads exactly; otherwise it loads exactly or is refused."""
    config = {"layer_sizes": sizes, "activation": activation, "loss": loss,
              "output_activation": None, "backend": "numpy", "dtype": dtype, "seed": seed,
              "tf32": None}
    params = bpnet.MLP(**config).params
    content = members(config, params)
    for part in broken:
        value = data.draw(_HOSTILE[part], label=part)
        if part == "version":
            content["bpnet_format.npy"] = npy(value)
        elif part == "weights":
            name, how = value
            l = int(name[1])
            if l >= len(sizes):
                continue
            shape = (sizes[l - 1], sizes[l]) if name[0] == "W" else (sizes[l],)
            if how == "missing":
                del content[f"{name}.npy"]
            elif how == "header":
                content[f"{name}.npy"] = npy_header(data.draw(_descr), data.draw(_shape))
            else:
                with np.errstate(over="ignore"):  # 1e39 in float32: inf, on purpose
                    content[f"{name}.npy"] = npy(np.full(shape, float(how)).astype(dtype))
        else:
            content["config.npy"] = npy(np.array(json.dumps({**config, part: value})))
    for name, descr, shape in junk:
        if f"{name}.npy" not in content:
            content[f"{name}.npy"] = npy_header(descr, shape)
    path = archive(tmp_path_factory.mktemp("gen") / "m.npz", content)
    try:
        net = bpnet.MLP.load(path)
    except ValueError as exc:
        assert broken, exc  # a valid file must load
        assert str(path) in str(exc) and "\n" not in str(exc)
        event("refused")
        return
    event("loaded")
    stored = serialization.read(path)  # what the file holds, after everything was checked
    assert net.get_config() == {**stored.config, "output_activation": net.output_activation}
    for (W, b), (W0, b0) in zip(net.params, stored.params):
        np.testing.assert_array_equal(bpnet.to_numpy(W), W0)
        np.testing.assert_array_equal(bpnet.to_numpy(b), b0)
    if not broken:
        assert_same_net(net, net.get_config(), params)


# --- extras, for state a later version stores beside the weights ---------------------------------


def test_extra_round_trip_and_checks(tmp_path):
    net = bpnet.MLP(**CONFIG)
    host = [(np.asarray(W), np.asarray(b)) for W, b in net.params]
    extra = Extra({"optimizer": "adam", "t": 7}, {"m.W1": np.ones((3, 4)), "t": np.array(7)})
    path = tmp_path / "m.npz"
    serialization.write(path, CONFIG, host, extra)
    assert serialization.read(path).extra is None  # not asked for: not read
    assert_same_net(bpnet.MLP.load(path), CONFIG, host)  # older readers ignore extras too
    seen = {}

    def expect(meta):
        seen.update(meta)
        return {"m.W1": ((3, 4), "float64"), "t": ((), "int64")}

    stored = serialization.read(path, extra=expect)
    assert seen == {"optimizer": "adam", "t": 7}
    np.testing.assert_array_equal(stored.extra.arrays["m.W1"], np.ones((3, 4)))
    assert stored.extra.arrays["t"] == 7
    for wrong, match in (({"m.W1": ((4, 3), "float64")}, r"shape \(3, 4\)"),
                         ({"m.W1": ((3, 4), "float32")}, "holds float64 values"),
                         ({"v.W1": ((3, 4), "float64")}, "no 'extra.v.W1' entry")):
        with pytest.raises(ValueError, match=match):
            serialization.read(path, extra=lambda meta, wrong=wrong: wrong)
    with pytest.raises(ValueError, match="name"):
        serialization.write(path, CONFIG, host, Extra({}, {"../x": np.ones(1)}))
    with pytest.raises(TypeError, match="booleans, integers or floats"):
        serialization.write(path, CONFIG, host, Extra({}, {"o": np.array([None])}))
    with pytest.raises(TypeError, match="JSON"):
        serialization.write(path, CONFIG, host, Extra({"f": float("nan")}, {}))
    with pytest.raises(TypeError, match="Extra"):
        serialization.write(path, CONFIG, host, {"meta": {}})


# --- file modes ---------------------------------------------------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_files_honour_the_umask(tmp_path, umask):
    net = bpnet.MLP(**CONFIG)
    old = os.umask(umask)
    try:
        net.save(tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m.npz").st_mode) == 0o666 & ~umask


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_replacing_a_file_keeps_its_mode(tmp_path):
    net = bpnet.MLP(**CONFIG)
    path = tmp_path / "m.npz"
    for mode in (0o644, 0o640, 0o600):
        path.write_bytes(b"old")
        os.chmod(path, mode)
        net.save(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == mode
        assert sorted(os.listdir(tmp_path)) == ["m.npz"]

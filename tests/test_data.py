"""Datasets, preprocessing and IDX files (written here; nothing is downloaded)."""

from __future__ import annotations

import gzip
import sys

import numpy as np
import pytest

from bpnet import data


def test_xor_codings():
    X, y = data.xor()
    assert X.shape == (4, 2) and set(y) == {0.0, 1.0}
    np.testing.assert_array_equal(y, np.logical_xor(X[:, 0], X[:, 1]))
    Xs, ys = data.xor(signed=True)
    np.testing.assert_array_equal(Xs, 2 * X - 1)
    np.testing.assert_array_equal(ys, 2 * y - 1)


def test_times_table_is_seed_000s():
    X, y = data.times_table()
    assert X.shape == (121, 2) and y.shape == (121,)
    np.testing.assert_array_equal(X[:3], [[0, 0], [0, 1], [0, 2]])  # i slowest, as the seed
    np.testing.assert_array_equal(y, X[:, 0] * X[:, 1])
    assert y.max() == 100
    Xr, _ = data.times_table(repeat=10)
    assert Xr.shape == (1210, 2)
    np.testing.assert_array_equal(Xr[::10], X)
    with pytest.raises(ValueError, match="repeat"):
        data.times_table(repeat=0)


@pytest.mark.parametrize("make", [data.moons, data.two_spirals])
def test_two_class_point_clouds(make):
    X, y = make(101, seed=3)
    assert X.shape == (101, 2) and y.shape == (101,)
    assert set(np.unique(y)) == {-1.0, 1.0} and abs(np.sum(y)) <= 1
    X2, _ = make(101, seed=3)
    np.testing.assert_array_equal(X, X2)
    assert not np.array_equal(make(101, seed=4)[0], X)
    with pytest.raises(ValueError, match="noise"):
        make(10, noise=-1)
    with pytest.raises(ValueError, match="n_samples"):
        make(1)


def test_spirals_wind_around_each_other():
    X, y = data.two_spirals(500, noise=0.0, turns=1.5)
    r = np.hypot(X[:, 0], X[:, 1])
    assert r.max() <= 1.0 + 1e-12
    # A point at radius r sits at angle 2 pi turns r; the other spiral is turned by pi.
    expected = 2 * np.pi * 1.5 * r + np.where(y > 0, 0.0, np.pi)
    gap = np.angle(np.exp(1j * (np.arctan2(X[:, 1], X[:, 0]) - expected)))
    np.testing.assert_allclose(gap, 0, atol=1e-9)


def test_one_hot():
    np.testing.assert_array_equal(data.one_hot([2, 0]), [[0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(data.one_hot([1], 3, negative=-1), [[-1, 1, -1]])
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        data.one_hot([0, 2], 2)
    with pytest.raises(ValueError, match="integers"):
        data.one_hot([0.5])
    with pytest.raises(ValueError, match="1-D"):
        data.one_hot([[0, 1]])


def test_standardize_uses_training_statistics(rng):
    X = rng.normal(5, 3, (200, 3))
    X[:, 2] = 7.0  # a constant feature is only centred
    Z, mean, std = data.standardize(X)
    np.testing.assert_allclose(Z[:, :2].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z[:, :2].std(axis=0), 1, rtol=1e-12)
    np.testing.assert_array_equal(Z[:, 2], 0)
    T, _, _ = data.standardize(X[:5] + 1, mean=mean, std=std)
    np.testing.assert_allclose(T, Z[:5] + 1 / std, rtol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        data.standardize(X, mean=mean[:2], std=std)


def test_pca_whitening_decorrelates(rng):
    X = rng.standard_normal((500, 4)) @ rng.standard_normal((4, 4))
    Z, Z2 = data.pca_whiten(X, X[:10])
    np.testing.assert_allclose(np.cov(Z, rowvar=False), np.eye(4), atol=1e-10)
    np.testing.assert_allclose(Z2, Z[:10], rtol=1e-10)
    (Z3,) = data.pca_whiten(X, n_components=2)
    assert Z3.shape == (500, 2)
    with pytest.raises(ValueError, match="n_components"):
        data.pca_whiten(X, n_components=5)


def test_train_test_split_is_stratified_and_seeded():
    y = np.repeat(np.arange(4), [40, 20, 20, 20])
    X = np.arange(100)[:, None]
    s = data.train_test_split(X, y, test_size=0.25, seed=1)
    assert len(s.y_test) == 25 and np.bincount(s.y_test).tolist() == [10, 5, 5, 5]
    assert sorted(np.concatenate([s.X_train, s.X_test])[:, 0]) == list(range(100))
    np.testing.assert_array_equal(y[s.X_train[:, 0]], s.y_train)
    assert np.array_equal(data.train_test_split(X, y, seed=1).X_test, s.X_test)
    with pytest.raises(ValueError, match="test_size"):
        data.train_test_split(X, y, test_size=1.5)
    with pytest.raises(ValueError, match="samples"):
        data.train_test_split(X, y[:5])


def test_digits_split_and_preprocessing():
    pytest.importorskip("sklearn")
    s = data.digits()
    assert s.X_train.shape == (1347, 64) and s.X_test.shape == (450, 64)
    assert sorted(set(s.y_test)) == list(range(10)) and s.y_train.dtype == np.int64
    assert np.bincount(s.y_test).min() >= 44  # stratified: about 45 of each class
    np.testing.assert_allclose(s.X_train.mean(axis=0), 0, atol=1e-10)
    raw = data.digits(standardize=False)
    assert raw.X_train.max() == 16 and np.array_equal(raw.y_test, s.y_test)
    w = data.digits(whiten=True, n_components=20)  # seed 002's preprocessing
    assert w.X_train.shape == (1347, 20)
    np.testing.assert_allclose(np.cov(w.X_train, rowvar=False), np.eye(20), atol=1e-8)
    with pytest.raises(ValueError, match="whiten"):
        data.digits(n_components=5)


def test_digits_without_scikit_learn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"bpnet\[train\]"):
        data.digits()


# --- IDX files ------------------------------------------------------------------------------


def write_idx(path, array, code=None, compress=False):
    """Write ``array`` as an IDX file (big-endian), as MNIST's files are."""
    codes = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
             np.float32: 0x0D, np.float64: 0x0E}
    code = codes[array.dtype.type] if code is None else code
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as fh:
        fh.write(payload)
    return path


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32,
                                   np.float64])
@pytest.mark.parametrize("compress", [False, True])
def test_load_idx_round_trip(tmp_path, rng, dtype, compress):
    array = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
    path = write_idx(tmp_path / "a.idx", array, compress=compress)  # no .gz: sniffed
    back = data.load_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)


def test_load_idx_refuses_bad_files(tmp_path):
    good = write_idx(tmp_path / "good", np.arange(12, dtype=np.uint8).reshape(3, 4))
    raw = good.read_bytes()
    cases = {
        "truncated": (raw[:-1], "truncated"),
        "trailing": (raw + b"\0", "truncated or corrupt"),
        "magic": (b"\1" + raw[1:], "magic"),
        "code": (raw[:2] + b"\x07" + raw[3:], "type code 0x07"),
        "header": (raw[:6], "header"),
        "empty": (b"", "magic"),
    }
    for name, (content, match) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValueError, match=match):
            data.load_idx(path)
    broken_gz = tmp_path / "broken.gz"
    broken_gz.write_bytes(gzip.compress(raw)[:-12])
    with pytest.raises(ValueError, match="IDX"):
        data.load_idx(broken_gz)
    with pytest.raises(FileNotFoundError, match="no IDX file"):
        data.load_idx(tmp_path / "missing")


def write_mnist(directory, kind="train", n=6, side=4, compress=True, dotted=False, rng=None):
    rng = rng or np.random.default_rng(0)
    images = rng.integers(0, 256, (n, side, side)).astype(np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    sep = "." if dotted else "-"
    suffix = ".gz" if compress else ""
    write_idx(directory / f"{kind}-images{sep}idx3-ubyte{suffix}", images, compress=compress)
    write_idx(directory / f"{kind}-labels{sep}idx1-ubyte{suffix}", labels, compress=compress)
    return images, labels


@pytest.mark.parametrize("compress,dotted", [(True, False), (False, False), (False, True)])
def test_mnist_reads_the_usual_file_names(tmp_path, compress, dotted):
    images, labels = write_mnist(tmp_path, "t10k", compress=compress, dotted=dotted)
    X, y = data.mnist(tmp_path, "t10k")
    assert X.shape == (6, 16) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(X, images.reshape(6, 16) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    raw, _ = data.mnist(tmp_path, "t10k", normalize=False)
    assert raw.dtype == np.uint8


def test_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.mnist(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        data.mnist(tmp_path)
    with pytest.raises(ValueError, match="kind"):
        data.mnist(tmp_path, "test")
    write_mnist(tmp_path, n=6)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5, np.uint8), compress=True)
    with pytest.raises(ValueError, match="6 images but 5 labels"):
        data.mnist(tmp_path)


def test_load_idx_corrupt_gzip_is_a_clear_error(tmp_path):
    raw = gzip.compress(write_idx(tmp_path / "a", np.arange(50, dtype=np.uint8)).read_bytes())
    for name, content in {
        "flipped": raw[:12] + bytes([raw[12] ^ 0xFF]) + raw[13:],  # deflate data damaged
        "garbage": b"\x1f\x8b\x08\x00" + b"not deflate at all" * 4,  # zlib.error before
        "crc": raw[:-8] + bytes(8),  # right data, wrong CRC and length
    }.items():
        path = tmp_path / f"{name}.gz"
        path.write_bytes(content)
        with pytest.raises(ValueError, match="not a readable gzip-compressed IDX file"):
            data.load_idx(path)


@pytest.mark.parametrize("dims", [(2**32 - 1,) * 3, (2**31, 2**31, 4), (65536, 65536, 65536)])
def test_load_idx_dimensions_that_overflow_int64_are_refused(tmp_path, dims):
    # np.prod of these wraps around int64 (to 0 for the last two), so a size
    # check done in NumPy integers would pass 0 bytes of data.
    path = tmp_path / "huge"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + np.array(dims, dtype=">u4").tobytes())
    with pytest.raises(ValueError, match=r"holds 0 bytes of data but its header announces"):
        data.load_idx(path)


def test_load_idx_reads_no_more_than_the_header_announces(tmp_path):
    # A gzip stream far longer than its header says is refused once the announced
    # size is read, without inflating the rest.
    header = bytes([0, 0, 0x08, 1]) + np.array([4], dtype=">u4").tobytes()
    path = tmp_path / "long.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(header + bytes(4))
        for _ in range(64):
            fh.write(bytes(1 << 20))
    with pytest.raises(ValueError, match="4 or more bytes of data"):
        data.load_idx(path)


# --- data sets by name --------------------------------------------------------------------


@pytest.mark.parametrize("name,canonical", [
    ("times-table", "times-table"), ("times_table", "times-table"), ("TIMES_TABLE", "times-table"),
    ("spirals", "spirals"), ("two_spirals", "spirals"), ("two-spirals", "spirals"),
    ("xor", "xor"), ("moons", "moons"), ("digits", "digits"), ("mnist", "mnist"),
])
def test_dataset_names_and_aliases(name, canonical):
    assert data.dataset_name(name) == canonical
    assert data.info(name).name == canonical and canonical in data.DATASETS


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown dataset 'spiral'; expected one of: digits, "
                                         "xor, times-table, moons, spirals, mnist"):
        data.load("spiral")
    with pytest.raises(TypeError, match="string"):
        data.info(3)


def test_load_returns_what_the_functions_do():
    X, y = data.times_table()
    s = data.load("times_table")
    np.testing.assert_array_equal(s.X_train, X)
    np.testing.assert_array_equal(s.y_train, y)
    assert s.X_test is None and s.y_test is None and not data.info("times-table").held_out
    X_train, X_test, _, y_test = data.load("two_spirals", test_size=0.5, seed=3)
    np.testing.assert_array_equal(X_train, data.two_spirals(200, seed=3)[0])
    np.testing.assert_array_equal(X_test, data.two_spirals(200, seed=4)[0])
    assert set(np.unique(y_test)) == {-1.0, 1.0} and data.info("spirals").targets == "sign"
    xor = data.load("xor")
    assert xor.y_train.dtype == np.int64 and data.info("xor").loss == "cross_entropy"


def test_load_digits_and_mnist_by_name(tmp_path):
    pytest.importorskip("sklearn")
    s = data.load("digits", test_size=0.2)
    ref = data.digits(test_size=0.2)
    np.testing.assert_array_equal(s.X_test, ref.X_test)
    write_mnist(tmp_path, "train", n=8)
    write_mnist(tmp_path, "t10k", n=3)
    m = data.load("mnist", data_dir=tmp_path)
    assert m.X_train.shape == (8, 16) and m.X_test.shape == (3, 16)


@pytest.mark.parametrize("name,kwargs,match", [
    ("xor", {"test_size": 0.3}, "'xor' has no held-out split; test_size does not apply"),
    ("times-table", {"test_size": 0.3}, "no held-out split"),
    ("mnist", {"test_size": 0.3}, "its own t10k test set"),
    ("moons", {"test_size": -0.1}, r"test_size must be a fraction in \(0, 1\), got -0.1"),
    ("spirals", {"test_size": 1.0}, r"fraction in \(0, 1\)"),
    ("moons", {"data_dir": "."}, "data_dir is for 'mnist' only"),
    ("mnist", {}, "pass data_dir="),
])
def test_load_refuses_what_does_not_apply(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load(name, **kwargs)

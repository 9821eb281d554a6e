"""Data loaders: digits, CIFAR-10 python batches and image folders, built here in their on-disk formats,
including corrupted and malicious files."""

import os
import pickle

import numpy as np
import pytest
import torch
from accuracy_fixtures import make_cifar, make_folder

from nasx.errors import ConfigError
from nasx.score.data import MAX_VAL, load_data, safe_unpickle, split

# --- digits ---


def test_digits_split_is_fixed_stratified_and_disjoint():
    data = load_data("digits", (3, 32, 32), 10)
    assert data.n_classes == 10 and len(data.labels) == 1797
    assert data.n_train + data.n_val == 1797 and 340 <= data.n_val <= 370
    assert not set(data.train_idx.tolist()) & set(data.val_idx.tolist())
    counts = np.bincount(data.labels[data.val_idx].numpy(), minlength=10)
    assert counts.min() >= 30  # stratified: every class ~20% in validation
    again = split(data.labels.numpy())
    assert np.array_equal(again[1], data.val_idx.numpy())


def test_digits_delivered_at_the_space_input_grey_repeated_and_normalised():
    data = load_data("digits", (3, 32, 32), 10)
    x, y = data.batch(data.train_idx[:64])
    assert x.shape == (64, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])  # grey -> RGB by repetition
    whole, _ = data.batch(data.train_idx)
    assert abs(float(whole.mean())) < 0.05 and abs(float(whole.std()) - 1) < 0.05
    grey = load_data("digits", (1, 16, 16), 10)
    assert grey.batch(grey.val_idx[:3])[0].shape == (3, 1, 16, 16)
    assert data.key != grey.key and data.key == load_data("digits", (3, 32, 32), 10).key


def test_more_classes_than_outputs_is_refused():
    with pytest.raises(ConfigError, match="10 classes, but the network has only 5 outputs"):
        load_data("digits", (3, 32, 32), 5)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("imagenet", "unknown data set"),
        ("cifar10:", "give the folder"),
        ("digits:x", "unknown data set"),
        ("", "empty"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(ConfigError, match=message):
        load_data(spec, (3, 32, 32))


# --- CIFAR-10 ---


@pytest.mark.parametrize("protocol, bytes_keys", [(2, True), (4, False), (5, True)])
def test_cifar_batches_load_pixel_exact(tmp_path, protocol, bytes_keys):
    raw, labels = make_cifar(tmp_path / "c", protocol=protocol, bytes_keys=bytes_keys)
    data = load_data(f"cifar10:{tmp_path / 'c'}", (3, 32, 32), 10)
    assert len(data.labels) == 60 and data.n_classes == 10 and data.classes[0] == "airplane"
    assert np.array_equal(data.labels.numpy(), labels)
    # channel-major rows: pixel (c, r, k) of image i is data[i, c*1024 + r*32 + k]
    assert data.images.dtype == torch.uint8
    assert int(data.images[7, 2, 5, 9]) == raw[7, 2 * 1024 + 5 * 32 + 9]
    assert int(data.images[42, 0, 31, 0]) == raw[42, 31 * 32]
    assert data.batch(data.val_idx)[0].shape == (data.n_val, 3, 32, 32)
    assert data.n_val == round(0.2 * 60) or abs(data.n_val - 12) <= 10  # stratified rounding per class
    assert MAX_VAL >= data.n_val


def test_cifar_resized_and_made_grey(tmp_path):
    make_cifar(tmp_path / "c", batches=1)
    data = load_data(f"cifar10:{tmp_path / 'c'}", (1, 20, 24), 10)
    assert data.batch(data.train_idx[:5])[0].shape == (5, 1, 20, 24)


class Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _dump(path, obj, protocol=2):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


def test_malicious_cifar_batch_is_refused_without_running_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "evil"
    folder.mkdir()
    _dump(folder / "data_batch_1", {b"data": Evil(), b"labels": [0]})
    with pytest.raises(ConfigError, match=r"data_batch_1: not a valid batch \(refused to load (posix|os)\.system"):
        load_data(f"cifar10:{folder}", (3, 32, 32))
    assert not (tmp_path / "PWNED").exists()
    with pytest.raises(pickle.UnpicklingError):
        safe_unpickle(pickle.dumps(eval))


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncate", "not a valid batch \\(pickle data was truncated|not a readable pickle"),
        ("garbage", "not a readable pickle|not a valid batch"),
        ("list", "expected a pickled dict"),
        ("nodata", "missing 'data' or 'labels'"),
        ("shape", "must be a uint8 array N x 3072"),
        ("count", "30 images but 29 labels"),
        ("labels", "labels must be 0..9"),
    ],
)
def test_corrupted_cifar_batches_one_clear_error(tmp_path, damage, message):
    folder = tmp_path / "c"
    raw, labels = make_cifar(folder, batches=2)
    path = folder / "data_batch_2"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:5000])
    elif damage == "garbage":
        path.write_bytes(bytes(range(256)) * 10)
    elif damage == "list":
        _dump(path, [1, 2, 3])
    elif damage == "nodata":
        _dump(path, {b"labels": [1]})
    elif damage == "shape":
        _dump(path, {b"data": raw[:30].reshape(30, 3, 32, 32), b"labels": [0] * 30})
    elif damage == "count":
        _dump(path, {b"data": raw[:30], b"labels": [0] * 29})
    elif damage == "labels":
        _dump(path, {b"data": raw[:30], b"labels": [12] * 30})
    with pytest.raises(ConfigError, match=message) as e:
        load_data(f"cifar10:{folder}", (3, 32, 32))
    assert "data_batch_2" in str(e.value) and "\n" not in str(e.value)


def test_cifar_missing_folder_or_batches(tmp_path):
    with pytest.raises(ConfigError, match="no such folder"):
        load_data(f"cifar10:{tmp_path / 'nope'}", (3, 32, 32))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "test_batch").write_bytes(b"")
    with pytest.raises(ConfigError, match="no data_batch_1"):
        load_data(f"cifar10:{tmp_path / 'empty'}", (3, 32, 32))


# --- image folders ---


def test_folder_tree_loads_with_sorted_classes_and_resizes(tmp_path):
    root = make_folder(tmp_path / "imgs", classes=("cat", "ant", "bee"))
    data = load_data(f"folder:{root}", (3, 16, 16), 10)
    assert data.classes == ["ant", "bee", "cat"] and len(data.labels) == 15
    assert np.bincount(data.labels.numpy()).tolist() == [5, 5, 5]
    assert data.images.shape == (15, 3, 16, 16)
    assert data.n_val == 3 and data.batch(data.val_idx)[0].shape == (3, 3, 16, 16)


def test_folder_grey_images_feed_an_rgb_network_and_rgb_a_grey_one(tmp_path):
    grey = load_data(f"folder:{make_folder(tmp_path / 'g', mode='L')}", (3, 12, 12), 3)
    x = grey.batch(grey.train_idx)[0]
    assert torch.equal(x[:, 0], x[:, 2])
    rgb = load_data(f"folder:{make_folder(tmp_path / 'c')}", (1, 12, 12), 3)
    assert rgb.batch(rgb.train_idx)[0].shape[1] == 1


def test_folder_corrupted_image_names_the_file(tmp_path):
    root = make_folder(tmp_path / "imgs")
    (root / "bee" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"broken" * 20)
    with pytest.raises(ConfigError, match=r"cannot decode image .*bee/3\.png"):
        load_data(f"folder:{root}", (3, 16, 16))


@pytest.mark.parametrize(
    "layout, message",
    [
        ("none", "no such folder"),
        ("flat", "no class subfolders"),
        ("emptyclass", "class folder 'dog' has no images"),
        ("oneclass", "needs at least 2 classes"),
    ],
)
def test_folder_bad_layouts(tmp_path, layout, message):
    root = tmp_path / "imgs"
    if layout == "flat":
        root.mkdir()
        (root / "a.png").write_bytes(b"")
    elif layout == "emptyclass":
        make_folder(root)
        (root / "dog").mkdir()
    elif layout == "oneclass":
        make_folder(root, classes=("only",))
    with pytest.raises(ConfigError, match=message):
        load_data(f"folder:{root}", (3, 16, 16))


def test_cli_missing_data_is_one_line_exit_2(nasx_cli, tmp_path):
    r = nasx_cli(
        "search",
        "--config",
        "cifar32",
        "--score",
        "train",
        "--data",
        f"cifar10:{tmp_path / 'none'}",
        "--storage",
        f"sqlite:///{tmp_path}/s.db",
        "--n-trials",
        "1",
        cwd=tmp_path,
    )
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "no such folder" in r.stderr
    assert not (tmp_path / "s.db").exists() or "trials" not in r.stdout  # nothing ran

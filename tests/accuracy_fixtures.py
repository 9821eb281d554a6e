"""Small fixtures for the accuracy tests (training on CPU must stay cheap): a 16x16 variant of the cifar32
space, a small plain CNN, and CIFAR-10 / image-folder data sets written in their on-disk formats."""

import os
import pickle

import numpy as np

from nasx.arch import Arch
from nasx.space.config import load_space


def tiny_space_text() -> str:
    """cifar32 at 16x16 with narrower, single-block stages (every family still reachable)."""
    text = load_space("cifar32").text
    for old, new in (
        ("input: [3, 32, 32]", "input: [3, 16, 16]"),
        ("out: [16, 32]", "out: [16]"),
        ("out: [48, 64]", "out: [32]"),
        ("out: [96, 128]", "out: [48]"),
        ("head: {out: [256]}", "head: {out: [64]}"),
        ("depth: [1, 2]", "depth: [1]"),
        ("name: cifar32", "name: tiny16"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text


def tiny_space(tmp_path):
    path = tmp_path / "tiny16.yaml"
    path.write_text(tiny_space_text())
    return path


def small_cnn(classes: int = 10) -> Arch:
    """conv 16 -> standard 32 s2 -> standard 64 s2 -> GAP -> linear, on 3x16x16 (0.7M MAdds)."""
    return Arch.from_dict(
        {
            "format": "nasx-arch",
            "version": 1,
            "name": "small-cnn",
            "input": [3, 16, 16],
            "stem": [{"type": "conv", "out": 16, "kernel": 3, "stride": 1}],
            "layers": [{"type": "standard", "out": 32, "stride": 2}, {"type": "standard", "out": 64, "stride": 2}],
            "head": [{"type": "gap"}, {"type": "flatten"}, {"type": "linear", "out": classes}],
        }
    )


def make_cifar(folder, batches=2, per_batch=30, protocol=2, bytes_keys=True, seed=0):
    """CIFAR-10 'python version' batches: a pickled dict of a uint8 N x 3072 array (R, G, B planes of 32x32,
    row-major) and a list of labels, with bytes keys as the original Python 2 pickles have."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    images, labels = [], []
    for b in range(1, batches + 1):
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        lab = [int(v) for v in rng.integers(0, 10, size=per_batch)]
        lab[:10] = list(range(10))  # every class present
        k = (lambda s: s.encode()) if bytes_keys else (lambda s: s)
        d = {
            k("batch_label"): k(f"training batch {b} of {batches}"),
            k("labels"): lab,
            k("data"): data,
            k("filenames"): [k(f"img_{b}_{i}.png") for i in range(per_batch)],
        }
        with open(os.path.join(folder, f"data_batch_{b}"), "wb") as f:
            pickle.dump(d, f, protocol=protocol)
        images.append(data)
        labels += lab
    meta = {
        b"label_names" if bytes_keys else "label_names": [
            b"airplane",
            b"automobile",
            b"bird",
            b"cat",
            b"deer",
            b"dog",
            b"frog",
            b"horse",
            b"ship",
            b"truck",
        ]
    }
    with open(os.path.join(folder, "batches.meta"), "wb") as f:
        pickle.dump(meta, f, protocol=protocol)
    return np.concatenate(images), np.array(labels)


def make_folder(root, classes=("ant", "bee", "cat"), per_class=5, size=(20, 14), mode="RGB"):
    from PIL import Image

    rng = np.random.default_rng(1)
    for c in classes:
        os.makedirs(os.path.join(root, c), exist_ok=True)
        for i in range(per_class):
            h, w = size if i % 2 == 0 else (size[0] + 6, size[1] + 3)  # sizes differ inside a class
            shape = (h, w, 3) if mode == "RGB" else (h, w)
            Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8), mode).save(
                os.path.join(root, c, f"{i}.png")
            )
    return root

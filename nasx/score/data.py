"""Real image data for `--score train`, `nasx validate-score` and `nasx retrain`, with nothing downloaded.

Data set specs (`--data`):

- `digits` — scikit-learn's bundled handwritten digits (1,797 grey 8x8 images, 10 classes; shipped inside
  the scikit-learn wheel, no network).
- `cifar10:PATH` — the standard CIFAR-10 "python version" folder (`data_batch_1` ... `data_batch_5`, each a
  pickle of a dict with `data`, a uint8 array N x 3072 in channel-major order, and `labels`). Every
  `data_batch_*` file in PATH is read; `test_batch` is never read, so a search never selects on the test set.
  The pickles are read with a restricted unpickler that resolves only numpy's array reconstruction
  functions and a few builtin containers: a crafted file that names any other callable (os.system, eval, ...)
  is refused before anything is called, so loading an untrusted batch cannot execute code.
- `folder:PATH` — an image-folder tree, one subfolder per class (`PATH/cat/001.png`); classes are the
  subfolder names in sorted order; images are decoded with Pillow.

Every data set is split once into train and validation parts by a fixed, seeded, per-class (stratified)
permutation: VAL_FRACTION of each class, at most MAX_VAL images in all, goes to validation. Images are
scaled to [0, 1], adapted to the space's channel count (grey -> RGB by repeating the channel, RGB -> grey
by averaging), resized to the space's input with torch.nn.functional.interpolate (bilinear, antialiased
when shrinking), and normalised with the per-channel mean and standard deviation of the training part.
Missing or malformed data raise ConfigError with one line saying which file and what is wrong."""

from __future__ import annotations

import hashlib
import io
import math
import pickle
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from nasx.errors import ConfigError

DEFAULT_DATA = "digits"  # the data set of --score train (and retrain) when --data is not given
VAL_FRACTION = 0.2
MAX_VAL = 5000
SPLIT_SEED = 0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".pbm", ".tif", ".tiff")
PRECOMPUTE_BYTES = 256 * 2**20  # resize everything once when the resized set fits in this; else per batch
SPECS = "digits, cifar10:PATH or folder:PATH"


@dataclass
class Dataset:
    """Images (N, C, H, W) as uint8 at their stored resolution, integer labels, a fixed split, and the
    target input shape every batch is delivered at (scaled to [0, 1], adapted, resized, normalised)."""

    name: str  # the spec it came from: digits, cifar10:PATH, folder:PATH
    images: object  # torch.Tensor (N, C0, H0, W0) uint8
    labels: object  # torch.Tensor (N,) int64
    classes: list[str]
    train_idx: object  # torch.Tensor of indices
    val_idx: object
    input_shape: tuple[int, int, int]
    digest: str  # content hash of the raw images and labels (part of every score cache key)
    mean: object = None
    std: object = None
    _ready: object = field(default=None, repr=False)  # the whole set already adapted, when it fits

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_train(self) -> int:
        return len(self.train_idx)

    @property
    def n_val(self) -> int:
        return len(self.val_idx)

    @property
    def key(self) -> str:
        """What a score trained on this data depends on: the content, the split and the delivered shape."""
        kind = self.name.split(":", 1)[0]
        return (
            f"{kind}-{self.digest}-split{SPLIT_SEED}v{VAL_FRACTION:g}m{MAX_VAL}-{'x'.join(map(str, self.input_shape))}"
        )

    def describe(self) -> str:
        c, h, w = tuple(self.images.shape[1:])
        return (
            f"{self.name}: {len(self.labels)} images {c}x{h}x{w}, {self.n_classes} classes, {self.n_train} "
            f"train / {self.n_val} validation, delivered at {'x'.join(map(str, self.input_shape))}"
        )

    def batch(self, idx):
        """Images (adapted to input_shape, normalised) and labels for the given indices."""
        if self._ready is not None:
            return self._ready[idx], self.labels[idx]
        return self._adapt(self.images[idx]), self.labels[idx]

    def _adapt(self, x):
        import torch.nn.functional as F

        c, h, w = self.input_shape
        x = x.float() / 255.0
        if x.shape[1] != c:
            x = x.expand(-1, c, -1, -1) if x.shape[1] == 1 else x.mean(1, keepdim=True)
        if tuple(x.shape[2:]) != (h, w):
            shrink = h < x.shape[2] or w < x.shape[3]
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=shrink)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x.contiguous()

    def _prepare(self) -> None:
        import torch

        self.mean = self.std = None
        sample = self._adapt(self.images[self.train_idx[:2000]])
        self.mean = sample.mean(dim=(0, 2, 3), keepdim=True)
        self.std = sample.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3)
        if 4 * len(self.labels) * math.prod(self.input_shape) <= PRECOMPUTE_BYTES:
            self._ready = torch.cat([self._adapt(self.images[i : i + 1024]) for i in range(0, len(self.labels), 1024)])


def parse_spec(spec: str) -> tuple[str, Path | None]:
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"--data: empty data set name; use {SPECS}")
    kind, _, path = spec.partition(":")
    if kind == "digits" and not path:
        return kind, None
    if kind in ("cifar10", "folder"):
        if not path:
            raise ConfigError(f"--data {spec}: give the folder, e.g. {kind}:/data/{kind}")
        return kind, Path(path).expanduser()
    raise ConfigError(f"--data {spec!r}: unknown data set; use {SPECS}")


def load_data(spec: str, input_shape, classes: int | None = None) -> Dataset:
    """The data set `spec` delivered at `input_shape` (C, H, W). With `classes` (the network's outputs), a
    data set with more classes than that is refused."""
    return _load(spec, tuple(int(v) for v in input_shape), classes)


@lru_cache(maxsize=4)
def _load(spec: str, input_shape: tuple[int, int, int], classes: int | None) -> Dataset:
    import torch

    kind, path = parse_spec(spec)
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ConfigError(f"input shape {input_shape} must be (channels, height, width)")
    if kind == "digits":
        images, labels, names = _digits()
    elif kind == "cifar10":
        images, labels, names = _cifar10(path)
    else:
        images, labels, names = _folder(path, input_shape)
    if images.shape[1] != input_shape[0] and not {images.shape[1], input_shape[0]} <= {1, 3}:
        raise ConfigError(
            f"--data {spec}: images have {images.shape[1]} channels and the network takes "
            f"{input_shape[0]}; only grey <-> RGB is adapted"
        )
    n_classes = len(names)
    if n_classes < 2:
        raise ConfigError(f"--data {spec}: needs at least 2 classes, found {n_classes}")
    if classes is not None and n_classes > classes:
        raise ConfigError(
            f"--data {spec}: {n_classes} classes, but the network has only {classes} outputs; set "
            f"`classes: {n_classes}` in the search-space config"
        )
    digest = hashlib.sha256(np.ascontiguousarray(images).tobytes() + labels.astype(np.int64).tobytes()).hexdigest()
    train_idx, val_idx = split(labels)
    data = Dataset(
        spec,
        torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)),
        torch.from_numpy(labels.astype(np.int64)),
        names,
        torch.from_numpy(train_idx),
        torch.from_numpy(val_idx),
        input_shape,
        digest[:12],
    )
    data._prepare()
    return data


def split(labels: np.ndarray, fraction: float = VAL_FRACTION, max_val: int = MAX_VAL, seed: int = SPLIT_SEED):
    """Stratified fixed split: a seeded permutation of each class; its first share goes to validation."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    share = min(fraction, max_val / n) if n else fraction
    train, val = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(share * len(members)))
        if len(members) >= 2:
            k = min(max(k, 1), len(members) - 1)  # every class on both sides when it can be
        val.append(members[:k])
        train.append(members[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


# --- digits ---------------------------------------------------------------------------------------------


def _digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ConfigError(
            "--data digits needs scikit-learn (its bundled digits set): pip install scikit-learn"
        ) from None
    d = load_digits()
    images = (d.images.astype(np.float64) * (255.0 / 16.0)).round().astype(np.uint8)[:, None]  # 0..16 -> 0..255
    return images, np.asarray(d.target, dtype=np.int64), [str(i) for i in range(10)]


# --- CIFAR-10 python batches ----------------------------------------------------------------------------


def _numpy_globals() -> dict:
    """The only callables a CIFAR batch may name, resolved from numpy itself (numpy 1 and 2 name their
    modules differently: numpy.core vs numpy._core)."""
    import importlib

    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]  # multiarray._reconstruct
    scalar = np.float64(1).__reduce__()[0]  # multiarray.scalar
    allowed = {"_reconstruct": reconstruct, "scalar": scalar, "ndarray": np.ndarray, "dtype": np.dtype}
    for mod in ("numpy._core.numeric", "numpy.core.numeric"):
        try:
            allowed["_frombuffer"] = importlib.import_module(mod)._frombuffer  # pickle protocol 5 arrays
            break
        except (ImportError, AttributeError):
            continue
    table = {}
    for mod in (
        "numpy",
        "numpy.core.multiarray",
        "numpy._core.multiarray",
        "numpy.core.numeric",
        "numpy._core.numeric",
    ):
        for name, obj in allowed.items():
            table[(mod, name)] = obj
    for name in ("DType",):
        table[("numpy.dtypes", name)] = np.dtype
    for dt in ("UInt8DType", "Int64DType", "Int32DType", "Float32DType", "Float64DType", "BytesDType", "StrDType"):
        if hasattr(np, "dtypes") and hasattr(np.dtypes, dt):
            table[("numpy.dtypes", dt)] = getattr(np.dtypes, dt)
    import codecs

    table[("_codecs", "encode")] = codecs.encode  # protocol-2 pickles written by Python 3 carry bytes this way
    for name, obj in (
        ("dict", dict),
        ("list", list),
        ("tuple", tuple),
        ("set", set),
        ("frozenset", frozenset),
        ("bytearray", bytearray),
        ("int", int),
        ("float", float),
        ("complex", complex),
        ("bool", bool),
        ("str", str),
        ("bytes", bytes),
    ):
        table[("builtins", name)] = obj
        table[("__builtin__", name)] = obj
    return table


class SafeUnpickler(pickle.Unpickler):
    """Resolves only numpy array reconstruction and builtin containers; anything else is refused."""

    _allowed: dict | None = None

    def find_class(self, module, name):
        if SafeUnpickler._allowed is None:
            SafeUnpickler._allowed = _numpy_globals()
        try:
            return SafeUnpickler._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: a CIFAR batch holds only numpy arrays and lists"
            ) from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refused: persistent references are not part of a CIFAR batch")


def safe_unpickle(data: bytes):
    """pickle.loads with SafeUnpickler (bytes keys kept, as CIFAR's Python 2 pickles need)."""
    return SafeUnpickler(io.BytesIO(data), encoding="bytes").load()


def _key(d: dict, name: str):
    for k in (name.encode(), name):
        if k in d:
            return d[k]
    return None


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 N x 3 x 32 x 32, labels int64 N) from one CIFAR-10 python batch file."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read CIFAR-10 batch {path}: {e.strerror or e}") from None
    try:
        d = safe_unpickle(raw)
    except pickle.UnpicklingError as e:
        raise ConfigError(f"CIFAR-10 batch {path}: not a valid batch ({e})") from None
    except Exception as e:  # truncated or garbage pickles raise many types (EOFError, ValueError, ...)
        raise ConfigError(
            f"CIFAR-10 batch {path}: not a readable pickle ({type(e).__name__}: {str(e)[:120] or 'truncated'})"
        ) from None
    if not isinstance(d, dict):
        raise ConfigError(
            f"CIFAR-10 batch {path}: expected a pickled dict with 'data' and 'labels', got {type(d).__name__}"
        )
    data, labels = _key(d, "data"), _key(d, "labels")
    if labels is None:
        labels = _key(d, "fine_labels")
    if data is None or labels is None:
        raise ConfigError(
            f"CIFAR-10 batch {path}: missing 'data' or 'labels' (keys: {', '.join(map(str, list(d)[:6]))})"
        )
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise ConfigError(
            f"CIFAR-10 batch {path}: 'data' must be a uint8 array N x 3072, got "
            f"{type(data).__name__} {getattr(data, 'dtype', '')} {shape}"
        )
    try:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise ConfigError(f"CIFAR-10 batch {path}: 'labels' must be a list of integers") from None
    if len(labels) != len(data):
        raise ConfigError(f"CIFAR-10 batch {path}: {len(data)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise ConfigError(f"CIFAR-10 batch {path}: labels must be 0..9, found {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32), labels


def _cifar10(path: Path):
    if not path.is_dir():
        raise ConfigError(
            f"--data cifar10:{path}: no such folder; point it at the extracted "
            f"cifar-10-batches-py folder (data_batch_1 ... data_batch_5)"
        )
    files = sorted(p for p in path.glob("data_batch_*") if re.fullmatch(r"data_batch_\d+", p.name))
    if not files:
        raise ConfigError(f"--data cifar10:{path}: no data_batch_1 ... data_batch_5 files in that folder")
    parts = [read_cifar_batch(f) for f in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    names = [str(i) for i in range(10)]
    meta = path / "batches.meta"
    if meta.is_file():
        try:
            d = safe_unpickle(meta.read_bytes())
            found = _key(d, "label_names") if isinstance(d, dict) else None
            if isinstance(found, list) and len(found) == 10:
                names = [n.decode() if isinstance(n, bytes) else str(n) for n in found]
        except Exception:
            pass  # the names are cosmetic
    return images, labels, names


# --- image folders --------------------------------------------------------------------------------------


def _folder(path: Path, input_shape):
    import torch
    import torch.nn.functional as F

    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise ConfigError("--data folder:PATH needs Pillow to decode images: pip install pillow") from None
    if not path.is_dir():
        raise ConfigError(f"--data folder:{path}: no such folder; expected one subfolder of images per class")
    class_dirs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise ConfigError(f"--data folder:{path}: no class subfolders (expected {path}/CLASS/IMAGE.png)")
    c, h, w = input_shape
    mode = "L" if c == 1 else "RGB"
    images, labels = [], []
    for label, d in enumerate(class_dirs):
        files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ConfigError(
                f"--data folder:{path}: class folder {d.name!r} has no images ({', '.join(IMAGE_SUFFIXES)})"
            )
        for f in files:
            try:
                with Image.open(f) as im:
                    arr = np.asarray(im.convert(mode), dtype=np.uint8)
            except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
                raise ConfigError(
                    f"--data folder:{path}: cannot decode image {f}: "
                    f"{str(e).splitlines()[0][:160] if str(e) else type(e).__name__}"
                ) from None
            x = torch.from_numpy(arr.reshape(arr.shape[0], arr.shape[1], -1).copy()).permute(2, 0, 1)[None].float()
            if tuple(x.shape[2:]) != (h, w):  # images differ in size: bring each to the input size now
                shrink = h < x.shape[2] or w < x.shape[3]
                x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=shrink)
            images.append(x.round().clamp(0, 255).to(torch.uint8)[0].numpy())
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64), [d.name for d in class_dirs]

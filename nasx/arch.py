"""Arch: an architecture as pure data. Versioned JSON, validated on load, with a stable content hash.

Loading only parses JSON and constructs registered dataclasses from checked values: no code runs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

import nasx.blocks  # noqa: F401  (registers the block families as layer types)
from nasx.errors import ArchError, force_hint
from nasx.graph import Graph
from nasx.layers import MAX_NUMBER, expand, layer_from_dict, layer_to_dict, show

FORMAT = "nasx-arch"
VERSION = 1
SECTIONS = ("stem", "layers", "head")

# Bounds that keep an untrusted file from exhausting memory; `force=True` lifts them.
LIMITS = {"layers": 2048, "channels": 65536, "pixels": 4096, "file_bytes": 8 << 20, "repeat": 256}


@lru_cache(maxsize=1 << 16)
def layer_graph(layer, in_shape: tuple[int, ...]) -> Graph:
    """The op graph of one layer on one input shape. Pure, so memoised: candidates in a search share most
    of their layers. Callers must not modify the returned graph."""
    g = Graph(in_shape)
    expand(layer, g, 0)
    return g


@dataclass(frozen=True)
class Arch:
    input: tuple[int, int, int]
    stem: tuple = ()
    layers: tuple = ()
    head: tuple = ()
    name: str = field(default="", compare=False)

    def sections(self):
        """Yield (section, index, layer) in forward order."""
        for section in SECTIONS:
            for i, layer in enumerate(getattr(self, section)):
                yield section, i, layer

    def graphs(self) -> list[tuple[str, int, object, Graph]]:
        """Each layer expanded into its op graph, shapes propagated; raises ArchError naming the layer."""
        out, shape = [], tuple(self.input)
        for section, i, layer in self.sections():
            try:
                g = layer_graph(layer, shape)
            except ArchError as e:
                raise ArchError(f"{section}[{i}] ({layer.name}) on input {list(shape)}: {e}") from None
            out.append((section, i, layer, g))
            shape = g.out_shape
        return out

    @property
    def out_shape(self) -> tuple[int, ...]:
        graphs = self.graphs()
        return graphs[-1][3].out_shape if graphs else self.input

    def families(self) -> dict[str, int]:
        """How many blocks of each family the arch uses."""
        counts: dict[str, int] = {}
        for _, _, layer in self.sections():
            fam = getattr(layer, "family", "")
            if fam:
                counts[fam] = counts.get(fam, 0) + 1
        return counts

    def to_dict(self, include_name: bool = True) -> dict:
        d = {"format": FORMAT, "version": VERSION}
        if include_name and self.name:
            d["name"] = self.name
        d["input"] = list(self.input)
        for section in SECTIONS:
            d[section] = [layer_to_dict(layer) for layer in getattr(self, section)]
        return d

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def content_hash(self) -> str:
        """sha256 of the canonical JSON without the name: equal structures share the hash."""
        canon = json.dumps(self.to_dict(include_name=False), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d, force: bool = False) -> Arch:
        if not isinstance(d, dict):
            raise ArchError(f"an architecture must be a JSON object, got {type(d).__name__}")
        if d.get("format", FORMAT) != FORMAT:
            raise ArchError(f'"format" must be {FORMAT!r}, got {show(d.get("format"))}')
        version = d.get("version", VERSION)
        if type(version) is not int or version != VERSION:
            raise ArchError(f"unsupported arch version {show(version)}: this nasx reads version {VERSION}")
        unknown = sorted(set(d) - {"format", "version", "name", "input", *SECTIONS})
        if unknown:
            raise ArchError(
                f"unknown top-level key(s) {', '.join(unknown)}; allowed: format, version, name, "
                f"input, {', '.join(SECTIONS)}"
            )
        inp = d.get("input")
        if not (isinstance(inp, list) and len(inp) == 3 and all(type(v) is int and 0 < v < MAX_NUMBER for v in inp)):
            raise ArchError(f'"input" must be [channels, height, width] of positive integers, got {show(inp)}')
        if not force and (max(inp[1:]) > LIMITS["pixels"] or inp[0] > LIMITS["channels"]):
            raise ArchError(
                f"input {inp} exceeds the size limits ({LIMITS['pixels']} px, {LIMITS['channels']} "
                f"channels); {force_hint()}"
            )
        name = d.get("name", "")
        if not isinstance(name, str):
            raise ArchError(f'"name" must be a string, got {show(name)}')
        sections = {}
        total = 0
        for section in SECTIONS:
            raw = d.get(section, [])
            if not isinstance(raw, list):
                raise ArchError(f'"{section}" must be a list of layers, got {type(raw).__name__}')
            layers = []
            for i, item in enumerate(raw):
                where = f"{section}[{i}]"
                repeat = 1
                if isinstance(item, dict) and "repeat" in item:
                    item = dict(item)
                    repeat = item.pop("repeat")
                    if type(repeat) is not int or not 1 <= repeat <= LIMITS["repeat"]:
                        raise ArchError(
                            f'{where}: "repeat" must be an integer in 1..{LIMITS["repeat"]}, got {show(repeat)}'
                        )
                layer = layer_from_dict(item, where)
                out = getattr(layer, "out", 0)
                if not force and isinstance(out, int) and out > LIMITS["channels"]:
                    raise ArchError(
                        f"{where}: {out} channels exceeds the limit of {LIMITS['channels']}; {force_hint()}"
                    )
                layers.append(layer)
                if repeat > 1:  # copies after the first keep the shape: stride 1
                    rest = dict(item, stride=1) if "stride" in item else item
                    layers.extend(layer_from_dict(rest, where) for _ in range(repeat - 1))
                if not force and total + len(layers) > LIMITS["layers"]:  # checked as we go: repeat multiplies
                    raise ArchError(
                        f"{where}: more than {LIMITS['layers']} layers exceeds the limit of "
                        f"{LIMITS['layers']}; {force_hint()}"
                    )
            total += len(layers)
            sections[section] = tuple(layers)
        if not force and total > LIMITS["layers"]:
            raise ArchError(f"{total} layers exceeds the limit of {LIMITS['layers']}; {force_hint()}")
        arch = cls(tuple(inp), name=name, **sections)
        arch.graphs()  # validates every layer against its input shape
        return arch

    @classmethod
    def from_json(cls, text: str, force: bool = False, source: str = "architecture") -> Arch:
        if not text.strip():
            raise ArchError(f"{source} is empty; an architecture is a JSON object (see `nasx export --format json`)")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ArchError(f"{source} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
        except RecursionError:
            raise ArchError(f"{source} is nested too deeply to be an architecture") from None
        except ValueError as e:  # e.g. an integer with more digits than Python converts
            raise ArchError(f"{source} is not usable JSON: {e}") from None
        try:
            return cls.from_dict(data, force=force)
        except ArchError as e:
            raise ArchError(f"{source}: {e}") from None


@cache
def zoo_arch(name: str) -> Arch:
    """The reference model `name` (see `nasx zoo`); ArchError naming the known ones for an unknown name."""
    from nasx import zoo

    return Arch.from_json(zoo.text(name), source=f"zoo:{name}")


def load_arch(source, force: bool = False) -> Arch:
    """An Arch from a path to a JSON file, a reference model name (see `nasx zoo`), or an Arch/dict."""
    if isinstance(source, Arch):
        return source
    if isinstance(source, dict):
        return Arch.from_dict(source, force=force)
    from nasx import zoo

    text = str(source)
    if text in zoo.names():
        return zoo_arch(text)
    path = Path(text)
    if not path.is_file():
        if path.is_dir():
            raise ArchError(f"{text} is a directory, not an architecture file; give the arch JSON file in it")
        if path.exists():  # /dev/null, a FIFO: nothing an architecture can be read from
            raise ArchError(
                f"{text} is not a regular file (a device or pipe); give an arch JSON file or a reference model name"
            )
        if text.lstrip().startswith(("{", "[")):
            raise ArchError(
                "that looks like inline JSON: nasx reads an architecture from a file; save it (e.g. as "
                "arch.json) and pass the file's path"
            )
        if "/" in text or text.endswith(".json"):  # meant as a file: that it is missing comes first
            raise ArchError(
                f"{text} does not exist: no such architecture file (reference models: {', '.join(zoo.names())})"
            )
        raise ArchError(
            f"{text!r} is neither an architecture file nor a reference model; models: {', '.join(zoo.names())}"
        )
    if not force and path.stat().st_size > LIMITS["file_bytes"]:
        raise ArchError(f"{path} is larger than {LIMITS['file_bytes'] >> 20} MiB; {force_hint()}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ArchError(f"cannot read {path}: {e}") from None
    return Arch.from_json(text, force=force, source=str(path))

"""One-line readable summaries of a trial (architecture, costs, latency) for tables and optuna-dashboard.

Pure string formatting over the JSON a trial stores: no torch, no database."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import nasx.blocks  # noqa: F401  (registers the block families as layer types)
from nasx.layers import LAYER_TYPES
from nasx.util.fmt import human

# keys a one-line summary writes by position (type, out, s2, x3) rather than as a field
_POSITIONAL = {"type", "out", "stride", "repeat"}


def _num(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _field_facts(type_name: Any) -> dict[str, Any]:
    """Each field's metadata: its `short` label, `quiet` (noise in a summary: shown only by `nasx cost` or
    the arch JSON) and `trivial` values (left out). A type this nasx does not know shows every key."""
    cls = LAYER_TYPES.get(type_name) if isinstance(type_name, str) else None
    return {f.name: f.metadata for f in fields(cls)} if cls is not None else {}


def layer_summary(d: dict) -> str:
    """{'type': 'dwsep', 'out': 16, 'stride': 2, 'kernel': 5, 'expansion': 4, ...} -> 'dwsep 16 s2 k5 e4'."""
    parts = [str(d.get("type", "?"))]
    if "out" in d:
        parts.append(str(d["out"]))
    if d.get("stride", 1) not in (1, [1, 1]):
        parts.append(f"s{_num(d['stride'] if not isinstance(d['stride'], list) else d['stride'][0])}")
    facts = _field_facts(d.get("type"))
    for key, value in d.items():
        meta = facts.get(key, {})
        if key in _POSITIONAL or meta.get("quiet") or value in (None, False) or value in meta.get("trivial", ()):
            continue
        short = meta.get("short", key + "=")
        if isinstance(value, list):
            value = "x".join(map(_num, value))
        parts.append(f"{short}{_num(value)}")
    if d.get("repeat", 1) != 1:
        parts.append(f"x{d['repeat']}")
    return " ".join(parts)


def arch_summary(arch: dict) -> str:
    """'3x32x32 | conv 16 k3 | dwsep 16 k5 e4 se0.25 · partial 96 s2 k3 r0.25 | conv 256 k1 · gap · ...'."""
    sections = [" · ".join(layer_summary(layer) for layer in arch.get(s, [])) for s in ("stem", "layers", "head")]
    return " | ".join(["x".join(map(str, arch.get("input", []))), *sections])


def cost_summary(attrs: dict) -> str:
    return (
        f"MAdds {human(attrs.get('madds', 0))} · MAC {human(attrs.get('mac_elements', 0))} elements · params "
        f"{human(attrs.get('params', 0))} · activations {human(attrs.get('activations', 0))}"
    )


def latency_summary(lat: dict, fp: dict | None = None) -> str:
    text = (
        f"{lat['median_ms']:.3f} ± {lat['iqr_ms']:.3f} ms (median ± IQR of {lat['repeats']} runs"
        f"{'' if lat.get('stable', True) else ', not settled'})"
    )
    if fp:
        text += (
            f" on {fp.get('device', '?')} {fp.get('hardware', '')}, {fp.get('threads', '?')} threads, "
            f"batch {fp.get('batch', '?')}"
        )
    return text


def readable_attrs(attrs: dict) -> dict[str, str]:
    """String user attrs a person can read in optuna-dashboard, derived from a trial's numeric ones. Their
    keys are capitalised so that they sort before the numeric attrs in the dashboard's attribute list."""
    out = {}
    if "arch" in attrs:
        out["Arch summary"] = arch_summary(attrs["arch"])
    if "madds" in attrs:
        out["Cost summary"] = cost_summary(attrs)
    if "latency" in attrs:
        out["Latency summary"] = latency_summary(attrs["latency"], attrs.get("fingerprint"))
    if "feasible" in attrs:
        out["Status"] = "feasible" if attrs["feasible"] else f"rejected: {attrs.get('reason', '')}"
    return out


def stages(arch: dict, params: dict | None = None) -> list[dict]:
    """The arch's body (its `layers`) stage by stage: out width, depth, stride and its blocks as runs of equal
    ones (family, knobs as in layer_summary, count). Stage depths come from a search
    trial's params (s1_depth, ...) when given; otherwise a stage starts at every stride or width change."""
    layers = arch.get("layers", [])
    depths = []
    params = params or {}
    if params.get("s1_depth"):
        i = 1
        while f"s{i}_depth" in params:
            depths.append(params[f"s{i}_depth"])
            i += 1
    if sum(depths) != len(layers):  # no params, or not this arch's: split where the stride or width changes
        depths = []
        for j, layer in enumerate(layers):
            prev = layers[j - 1] if j else None
            if prev is None or layer.get("stride", 1) not in (1, [1, 1]) or layer.get("out") != prev.get("out"):
                depths.append(0)
            depths[-1] += 1
    out, start = [], 0
    for depth in depths:
        block = layers[start : start + depth]
        start += depth
        runs: list[tuple[str, str, int]] = []  # (family, knobs, count) of consecutive equal blocks
        for layer in block:
            text = layer_summary({k: v for k, v in layer.items() if k not in ("out", "stride")})
            family, _, knobs = text.partition(" ")
            if runs and runs[-1][:2] == (family, knobs):
                runs[-1] = (family, knobs, runs[-1][2] + 1)
            else:
                runs.append((family, knobs, 1))
        stride = block[0].get("stride", 1) if block else 1
        out.append(
            {
                "out": block[0].get("out") if block else None,
                "depth": depth,
                "stride": stride[0] if isinstance(stride, list) else stride,
                "blocks": [{"family": f, "knobs": k, "count": n} for f, k, n in runs],
            }
        )
    return out

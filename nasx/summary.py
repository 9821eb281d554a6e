"""One-line readable summaries of a trial (architecture, costs, latency) for tables and optuna-dashboard.

Pure string formatting over the JSON a trial stores: no torch, no database."""

from __future__ import annotations

from nasx.util.fmt import human

# fields that are noise in a one-line summary (shown only by `nasx cost` or the arch JSON)
_QUIET = {"type", "out", "stride", "padding", "dilation", "bias", "bn", "act", "mid", "se_mid", "se_gate", "linear",
          "residual", "group_first", "bottleneck_ratio", "repeat"}
_SHORT = {"kernel": "k", "expansion": "e", "groups": "g", "version": "v", "ratio": "r", "dc": "dc", "se": "se",
          "layout": ""}


def _num(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def layer_summary(d: dict) -> str:
    """{'type': 'dwsep', 'out': 16, 'stride': 2, 'kernel': 5, 'expansion': 4, ...} -> 'dwsep 16 s2 k5 e4'."""
    parts = [str(d.get("type", "?"))]
    if "out" in d:
        parts.append(str(d["out"]))
    if d.get("stride", 1) not in (1, [1, 1]):
        parts.append(f"s{_num(d['stride'] if not isinstance(d['stride'], list) else d['stride'][0])}")
    for key, value in d.items():
        if key in _QUIET or value in (None, False) or (key in ("se", "groups") and value in (0, 1, 0.0)):
            continue
        short = _SHORT.get(key, key + "=")
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
    return (f"MAdds {human(attrs.get('madds', 0))} · MAC {human(attrs.get('mac_elements', 0))} elements · params "
            f"{human(attrs.get('params', 0))} · activations {human(attrs.get('activations', 0))}")


def latency_summary(lat: dict, fp: dict | None = None) -> str:
    text = (f"{lat['median_ms']:.3f} ± {lat['iqr_ms']:.3f} ms (median ± IQR of {lat['repeats']} runs"
            f"{'' if lat.get('stable', True) else ', not settled'})")
    if fp:
        text += f" on {fp.get('device', '?')} {fp.get('hardware', '')}, {fp.get('threads', '?')} threads, " \
                f"batch {fp.get('batch', '?')}"
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

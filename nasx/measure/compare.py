"""nasx beside an external counter (fvcore, ptflops, thop) run on the built module.

Each counter has its own rules (BN folded or not, bias, activations, pooling, which ops it can see at
all). nasx re-counts its own op graphs under those rules (pure arithmetic: no torch), runs the counter
on the module that `nasx.build` makes from the same graphs, and prints both per category of op, so a
difference is either explained by a rule (the `why` column) or is a real disagreement (a total that
does not match). The `nasx` column is nasx's own MAdds convention (docs/DESIGN.md section 4).

The counters are optional extras: `pip install "nasx[compare]"`."""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass, field

from nasx.arch import load_arch
from nasx.errors import NasxError
from nasx.ops.base import ACTIVATION_FNS, Convention, Term

__all__ = ["CATEGORIES", "COUNTERS", "COUNTER_RULES", "Comparison", "Row", "Term", "census", "compare", "recount"]

COUNTERS = ("fvcore", "ptflops", "thop")  # each is also the name of its PyPI package

# Categories of arithmetic, in the order the table prints them.
CATEGORIES = {
    "conv": "convolutions",
    "linear": "linear",
    "bn": "batch norm",
    "act": "activations",
    "pool": "k x k pooling",
    "gap": "global avg pool",
    "elementwise": "add / multiply",
    "functional": "functional calls",
    "other": "other",
}


def census(arch) -> list[Term]:
    """Every arithmetic term of the arch, from the same op graphs `cost` and `build` walk; each op describes
    its own (Op.terms; one that does not is an "other" term)."""
    conv = Convention()
    terms: list[Term] = []
    for _, _, _, g in arch.graphs():
        for i, (op, inputs) in enumerate(g.nodes, 1):
            ins, out = tuple(g.shapes[j] for j in inputs), g.shapes[i]
            terms.extend(op.terms(ins, out, op.cost(ins, out, conv).madds))
    return terms


# ---- each counter's rules, as nasx arithmetic ---------------------------------------------------------
# rule(term) -> {category: ops}; `why` says how the counter departs from nasx's MAdds convention.


def _nasx_rule(t: Term) -> dict[str, int]:
    return {t.category: t.madds} if t.category in ("conv", "linear") else {}


def _fvcore_rule(t: Term) -> dict[str, int]:
    c = t.category
    if c in ("conv", "linear"):
        return {c: t.madds}
    if c == "bn":
        return {c: 2 * t.n_out}
    if c == "gap":
        return {c: t.n_in}
    return {}


def _thop_rule(t: Term) -> dict[str, int]:
    c = t.category
    if c in ("conv", "linear"):
        return {c: t.madds}
    if c == "bn":
        return {c: 4 * t.n_out}
    if c == "pool":
        return {c: t.n_out if t.detail == "avg" else 0}
    if c == "gap":
        return {c: t.n_in + t.channels}
    return {}


# ptflops (pytorch backend) counts in module hooks and, separately, in patched torch.nn.functional calls
# that the modules make internally; the second part lands in the "functional" row.
_PTFLOPS_MODULE_ACTS = {"relu", "relu6", "gelu"}
_PTFLOPS_FUNCTIONAL_ACTS = {"relu", "gelu", "silu"}


def _ptflops_rule(t: Term) -> dict[str, int]:
    c = t.category
    if c in ("conv", "linear"):
        return {c: t.madds + (t.n_out if t.bias else 0)}
    if c == "bn":
        return {c: 2 * t.n_out}
    if c == "act":
        out = {c: t.n_out} if t.detail in _PTFLOPS_MODULE_ACTS else {}
        if t.detail in _PTFLOPS_FUNCTIONAL_ACTS:
            out["functional"] = t.n_out
        return out
    if c == "pool":
        return {c: t.n_in, "functional": t.n_in}
    if c == "gap":
        return {c: t.n_in, "functional": t.n_in}
    return {}


WHY = {
    "fvcore": {
        "conv": "MAdds, bias excluded: nasx's convention",
        "linear": "MAdds, bias excluded: nasx's convention",
        "bn": "counted unfolded, 2 per element (eval mode); nasx folds BN into the conv",
        "act": "not counted (fvcore has no handle for activations)",
        "pool": "max / avg pooling not counted (no handle)",
        "gap": "1 per input element (adaptive_avg_pool2d handle); nasx counts no pooling arithmetic",
        "elementwise": "aten::add / aten::mul skipped (no handle)",
    },
    "ptflops": {
        "conv": "MAdds + 1 per output element when the conv has a bias (SE convs)",
        "linear": "MAdds + 1 per output for the bias",
        "bn": "counted unfolded, 2 per element (affine); nasx folds BN into the conv",
        "act": "ReLU, ReLU6, GELU modules: 1 per element; Hardswish, Hardsigmoid, Sigmoid, SiLU modules: no hook (0)",
        "pool": "1 per input element (max or avg)",
        "gap": "1 per input element",
        "elementwise": "a + b and a * b are invisible (only torch.add / torch.mul calls are patched)",
        "functional": "torch.nn.functional calls made inside modules (relu, gelu, silu, pooling), patched: 1 "
        "per input element on top of the module hooks (ReLU, GELU, pooling count twice, SiLU once)",
    },
    "thop": {
        "conv": "MAdds, bias ignored: nasx's convention",
        "linear": "MAdds, bias ignored: nasx's convention",
        "bn": "4 per element (normalize 2 + affine 2), although BN folds at inference",
        "act": "ReLU, ReLU6: 0; Hardswish, Hardsigmoid, GELU, SiLU, Sigmoid: no rule (0)",
        "pool": "max pooling 0; avg pooling 1 per output element",
        "gap": "H*W additions + 1 division per output (input elements + channels)",
        "elementwise": "invisible: only registered module types are counted",
    },
}
COUNTER_RULES = {
    "nasx": _nasx_rule,
    "fvcore": _fvcore_rule,
    "ptflops": _ptflops_rule,
    "thop": _thop_rule,
}


def recount(terms: list[Term], counter: str) -> dict[str, int]:
    """nasx's terms counted under `counter`'s rules, per category."""
    rule = COUNTER_RULES[counter]
    out: dict[str, int] = {}
    for t in terms:
        for cat, n in rule(t).items():
            out[cat] = out.get(cat, 0) + n
    return out


# ---- running the counters on the built module ---------------------------------------------------------


def _category_of_module(m) -> str:
    from torch import nn

    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return "conv"
    if isinstance(m, nn.Linear):
        return "linear"
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return "bn"
    if isinstance(m, tuple(getattr(nn, fn.torch_class) for fn in ACTIVATION_FNS.values())):
        return "act"
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        return "pool"
    if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return "gap"
    return "other"


def _import(counter: str):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # thop warns about distutils, fvcore about torch.jit
            return __import__(counter)
    except Exception as e:  # ImportError, or a counter broken by the running Python (thop needs distutils)
        raise NasxError(
            f"--compare {counter} needs the {counter!r} package ({type(e).__name__}: {e}); "
            f'install the optional counters with: pip install "nasx[compare]"'
        ) from None


def _version(counter: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(counter)
    except metadata.PackageNotFoundError:
        return ""


def _run_fvcore(model, x):
    with warnings.catch_warnings():  # fvcore's import and its jit trace warn about torch.jit deprecations
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis, parameter_count

        fa = FlopCountAnalysis(model, x)
        fa.unsupported_ops_warnings(False)
        fa.uncalled_modules_warnings(False)
        by_operator, total, unsupported = fa.by_operator(), fa.total(), fa.unsupported_ops()
    names = {
        "conv": "conv",
        "linear": "linear",
        "addmm": "linear",
        "matmul": "linear",
        "mm": "linear",
        "batch_norm": "bn",
        "adaptive_avg_pool2d": "gap",
        "avg_pool2d": "pool",
        "max_pool2d": "pool",
    }
    per: dict[str, int] = {}
    for op, n in by_operator.items():
        cat = names.get(op, "other")
        per[cat] = per.get(cat, 0) + int(n)
    skipped = ", ".join(f"{k.removeprefix('aten::')} x{v}" for k, v in sorted(unsupported.items()))
    return per, int(total), int(parameter_count(model)[""]), (f"fvcore skipped: {skipped}" if skipped else "")


def _run_thop(model, x):
    from thop import profile

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        total, params, layers = profile(model, inputs=(x,), verbose=False, ret_layer_info=True)
    per: dict[str, int] = {}

    def walk(prefix: str, d: dict) -> None:
        for name, (ops, _, children) in d.items():
            path = f"{prefix}.{name}" if prefix else name
            if children:
                walk(path, children)
            elif ops:
                cat = _category_of_module(model.get_submodule(path))
                per[cat] = per.get(cat, 0) + int(ops)

    walk("", layers)
    return per, int(total), int(params), ""


def _run_ptflops(model, x):
    from ptflops import get_model_complexity_info
    from ptflops.pytorch_ops import MODULES_MAPPING

    per: dict[str, int] = {}

    def wrap(hook):
        def counted(module, inp, out):
            before = module.__flops__
            hook(module, inp, out)
            cat = _category_of_module(module)
            per[cat] = per.get(cat, 0) + int(module.__flops__ - before)

        return counted

    hooks = {t: wrap(h) for t, h in MODULES_MAPPING.items()}
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        total, params = get_model_complexity_info(
            model,
            tuple(x.shape[1:]),
            print_per_layer_stat=False,
            as_strings=False,
            verbose=False,
            backend="pytorch",
            custom_modules_hooks=hooks,
        )
    if total is None:
        raise NasxError("ptflops failed on this model (run ptflops directly to see its traceback)")
    rest = int(total) - sum(per.values())
    if rest:
        per["functional"] = rest
    return per, int(total), int(params), "ptflops backend: pytorch (module hooks + patched functional calls)"


RUNNERS = {"fvcore": _run_fvcore, "ptflops": _run_ptflops, "thop": _run_thop}


# ---- the comparison -----------------------------------------------------------------------------------


@dataclass
class Row:
    category: str
    nasx: int  # nasx MAdds convention
    nasx_as_counter: int  # nasx's graphs under the counter's rules
    counter: int  # measured by the counter on the built module
    why: str

    @property
    def matches(self) -> bool:
        return self.nasx_as_counter == self.counter


@dataclass
class Comparison:
    arch_name: str
    input: tuple
    counter: str
    version: str
    rows: list[Row]
    total_nasx: int
    total_as_counter: int
    total_counter: int
    params_nasx: int
    params_counter: int
    notes: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return self.total_as_counter == self.total_counter and self.params_nasx == self.params_counter

    def to_json_dict(self) -> dict:
        return {
            "arch": self.arch_name,
            "input": list(self.input),
            "counter": self.counter,
            "version": self.version,
            "rows": [
                {
                    "category": r.category,
                    "nasx_madds": r.nasx,
                    f"nasx_as_{self.counter}": r.nasx_as_counter,
                    self.counter: r.counter,
                    "why": r.why,
                }
                for r in self.rows
            ],
            "total": {
                "nasx_madds": self.total_nasx,
                f"nasx_as_{self.counter}": self.total_as_counter,
                self.counter: self.total_counter,
            },
            "params": {"nasx": self.params_nasx, self.counter: self.params_counter},
            "matches": self.matches,
            "notes": self.notes,
        }

    def table(self) -> str:
        c = self.counter
        header = ["category", "nasx MAdds", f"nasx as {c}", c, "", "why they differ from nasx MAdds"]
        body = [
            [
                CATEGORIES.get(r.category, r.category),
                f"{r.nasx:,}",
                f"{r.nasx_as_counter:,}",
                f"{r.counter:,}",
                "" if r.matches else "!=",
                r.why,
            ]
            for r in self.rows
        ]
        same = self.total_as_counter == self.total_counter
        foot = [
            [
                "total",
                f"{self.total_nasx:,}",
                f"{self.total_as_counter:,}",
                f"{self.total_counter:,}",
                "" if same else "!=",
                "",
            ],
            [
                "params",
                f"{self.params_nasx:,}",
                f"{self.params_nasx:,}",
                f"{self.params_counter:,}",
                "" if self.params_nasx == self.params_counter else "!=",
                "every learnable parameter",
            ],
        ]
        cells = [header] + body + foot
        widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

        def line(r):
            return "  ".join(
                v.ljust(w) if i in (0, 5) else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()

        rule = "  ".join("-" * w for w in widths)
        lines = [line(header), rule] + [line(r) for r in body] + [rule] + [line(r) for r in foot]
        title = (
            f"nasx vs {c} {self.version} on {self.arch_name} @ {'x'.join(map(str, self.input))} (batch 1)\n"
            f"nasx MAdds: {Convention().describe()}\n"
            f"nasx as {c}: nasx's op graphs re-counted under {c}'s rules; {c}: measured on nasx.build(arch)\n"
        )
        verdict = (
            f"{c} matches nasx re-counted under its rules exactly: every difference from nasx's MAdds is "
            f"one of the rules above"
            if self.matches
            else f"{c} does NOT match nasx re-counted under its rules (rows marked !=): {c} counts something "
            f"nasx does not model"
        )
        return title + "\n".join(lines + ["", verdict] + self.notes)


def compare(arch, counter: str) -> Comparison:
    """Run `counter` on nasx.build(arch) and put it beside nasx's analytic counts (see module doc)."""
    if counter not in COUNTERS:
        raise NasxError(f"unknown counter {counter!r}: use one of {', '.join(COUNTERS)}")
    arch = load_arch(arch)
    _import(counter)
    import torch

    from nasx.build import build

    torch.manual_seed(0)
    model = build(arch).eval()
    x = torch.zeros(1, *arch.input)
    per, total, params, note = RUNNERS[counter](model, x)
    terms = census(arch)
    mine, theirs = recount(terms, "nasx"), recount(terms, counter)
    present = {t.category for t in terms} | set(theirs) | set(per)
    cats = [k for k in CATEGORIES if k in present]
    rows = [Row(k, mine.get(k, 0), theirs.get(k, 0), per.get(k, 0), WHY[counter].get(k, "")) for k in cats]
    from nasx.cost import cost

    params_nasx = cost(arch).params
    version = _version(counter)
    notes = [note] if note else []
    unknown = sorted({t.detail for t in terms if t.category == "other"})
    if unknown:
        notes.append(f"ops nasx cannot describe to {counter}'s rules: {', '.join(unknown)}")
    return Comparison(
        arch.name or "arch",
        tuple(arch.input),
        counter,
        version,
        rows,
        sum(mine.values()),
        sum(theirs.values()),
        total,
        params_nasx,
        params,
        notes,
    )

"""Terminal formatting: human-readable numbers and plain-text tables."""

from __future__ import annotations


def human(n: float) -> str:
    """1234567 -> '1.23M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.4g}" if isinstance(n, float) else str(n)


def render_table(header: list[str], rows: list[list], footer: bool = False) -> str:
    """Left-aligned first columns, right-aligned numbers; a rule under the header (and above a footer row)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r):
        cells = enumerate(zip(r, widths, strict=False))
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [line(cells[0]), rule] + [line(r) for r in cells[1:]]
    if footer and len(rows) > 0:
        out.insert(len(out) - 1, rule)
    return "\n".join(out)


def duration(s: float) -> str:
    """Whole seconds as 42s or 3m07s (progress lines, summaries)."""
    s = int(s)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def fmt_corr(v: float | None) -> str:
    """A rank correlation as +0.123, or n/a when undefined (None or NaN: too few or constant values)."""
    return "n/a" if v is None or v != v else f"{v:+.3f}"

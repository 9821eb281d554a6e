"""Terminal formatting: human-readable numbers and plain-text tables."""

from __future__ import annotations


def human(n: float) -> str:
    """1234567 -> '1.23M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.4g}" if isinstance(n, float) else str(n)


TABLE_WIDTH = 100  # what a terminal shows without wrapping (80 is too narrow for a front's seven columns)
MIN_WRAP = 12  # a wrapped column never gets narrower than this (nor than its header)


def _words(text: str) -> list[str]:
    """The pieces a wrapped cell breaks between: items of a ', ' list (family 3), else words."""
    return text.split(", " if ", " in text else " ")


def _pack(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width`, broken after ', ' where it has them (family lists), else at spaces;
    a word longer than the width is cut."""
    sep = ", " if ", " in text else " "
    words = _words(text)
    lines, cur = [], ""
    for i, word in enumerate(words):
        piece = word + (sep.rstrip() if i < len(words) - 1 else "")
        while len(piece) > width:
            if cur:
                lines.append(cur)
                cur = ""
            lines.append(piece[:width])
            piece = piece[width:]
        if cur and len(cur) + 1 + len(piece) > width:
            lines.append(cur)
            cur = piece
        else:
            cur = f"{cur} {piece}" if cur else piece
    return [*lines, cur] if cur or not lines else lines


def render_table(
    header: list[str],
    rows: list[list],
    footer: bool = False,
    width: int = TABLE_WIDTH,
    wrap: tuple[int, ...] | None = None,
) -> str:
    """Left-aligned first columns, right-aligned numbers; a rule under the header (and above a footer row).
    Wider than `width`, the `wrap` columns (default: the last, e.g. a front's families) are narrowed in the
    order given, and their cells continue on the next lines."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    n = len(header)
    widths = [max(len(r[i]) for r in cells) for i in range(n)]
    wrap = tuple(i % n for i in (wrap if wrap is not None else (n - 1,)))
    for i in wrap:  # in the order given, each as far as needed, never below MIN_WRAP, its header or a word
        excess = sum(widths) + 2 * (n - 1) - width
        if excess > 0:
            floor = max(MIN_WRAP, len(cells[0][i]), *(len(w) + 1 for r in cells[1:] for w in _words(r[i])))
            widths[i] = max(min(widths[i], floor), widths[i] - excess)

    def lines(r):
        parts = [_pack(c, widths[i]) if i in wrap and len(c) > widths[i] else [c] for i, c in enumerate(r)]
        out = []
        for k in range(max(map(len, parts))):
            row = [p[k] if k < len(p) else "" for p in parts]
            out.append(
                "  ".join(
                    c.ljust(w) if i < 2 or i in wrap else c.rjust(w)
                    for i, (c, w) in enumerate(zip(row, widths, strict=False))
                ).rstrip()
            )
        return out

    rule = "  ".join("-" * w for w in widths)
    body = [lines(r) for r in cells[1:]]
    out = [*lines(cells[0]), rule]
    for i, block in enumerate(body):
        if footer and i == len(body) - 1:
            out.append(rule)
        out.extend(block)
    return "\n".join(out)


def duration(s: float) -> str:
    """Whole seconds as 42s or 3m07s (progress lines, summaries)."""
    s = int(s)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def fmt_corr(v: float | None) -> str:
    """A rank correlation as +0.123, or n/a when undefined (None or NaN: too few or constant values)."""
    return "n/a" if v is None or v != v else f"{v:+.3f}"

"""The HTML page shell of every standalone page nasx writes (report, explore, microbench): one style, the
plotly figures as divs (plotly.js inlined once, so the page works offline), written atomically."""

from __future__ import annotations

import html
from pathlib import Path

from nasx.util.files import atomic_write_text

STYLE = (
    "body{{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:{width}px;color:#222}}\n"
    "pre{{background:#f6f6f6;padding:.8em;overflow-x:auto{pre}}}.small{{color:#666;font-size:.9em}}{css}"
)


def figure_divs(figs: dict, height: str) -> list[str]:
    """Each plotly figure as a <div id="fig-KEY">; plotly.js is inlined with the first."""
    import plotly.io as pio

    return [
        pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs=(i == 0),
            div_id=f"fig-{key}",
            default_width="100%",
            default_height=height,
        )
        for i, (key, fig) in enumerate(figs.items())
    ]


def made_with_plotly() -> str:
    import plotly

    return f"made by nasx with plotly {html.escape(plotly.__version__)}"


def page(title: str, body: str, *, width: int = 1200, small_pre: bool = False, css: str = "") -> str:
    """A standalone page: `title` (escaped here) as <title> and <h1>, then `body` (HTML, as given)."""
    title = html.escape(title)
    style = STYLE.format(width=width, pre=";font-size:.85em" if small_pre else "", css=css)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>\n'
        f"<style>{style}</style></head>\n<body><h1>{title}</h1>\n{body}\n</body></html>\n"
    )


def write_page(path, text: str) -> Path:
    return atomic_write_text(path, text, ".html")

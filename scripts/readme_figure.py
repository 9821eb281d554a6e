"""Makes the README's picture from a real run: a small search, then `nasx report`, whose front PNG is copied
to docs/img/front.png; prints the caption line (command, date, machine) to paste under the picture.

    python scripts/readme_figure.py                  # cifar32, 20M MAdds, 30 trials, seed 1 (a few minutes)
    python scripts/readme_figure.py --n-trials 60    # any search flag after the defaults overrides them

The study lives in a temporary folder and is thrown away: only the PNG is kept. The PNG needs kaleido and a
Chrome or Chromium (`pip install "nasx[report]"`); without them the report says why and this script exits 1.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEARCH = ["--config", "cifar32", "--budget", "20M", "--n-trials", "30", "--seed", "1", "--measure-time", "0.2"]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def nasx(*args: str) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "nasx.cli.main", *args]
    print("$ nasx " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", default=str(ROOT / "docs" / "img" / "front.png"))
    args, extra = p.parse_known_args(argv)
    out = Path(args.output)
    with tempfile.TemporaryDirectory(prefix="nasx-figure-") as tmp:
        storage = f"sqlite:///{tmp}/f.db"
        nasx("search", *SEARCH, *extra, "--storage", storage)
        html = Path(tmp) / "front.html"
        nasx("report", "--storage", storage, "-o", str(html))
        png = html.with_name(f"{html.stem}-front.png")
        if not png.exists():
            print(f"no {png.name}: the report could not write PNGs here (see its note above)", file=sys.stderr)
            return 1
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, out)
    import torch

    machine = f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}"
    command = "nasx search " + " ".join([*SEARCH, *extra]) + "; nasx report"
    print(f"wrote {out}")
    print(f"caption: `{command}`, {datetime.date.today().isoformat()}, {machine} (scripts/readme_figure.py)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How well does the block latency table predict whole networks? `nasx explore` on each space, judged held out.

For each space (default mobile224, mobile224_layers, cifar32) this runs what `nasx explore --config SPACE --json
FILE` runs (sampling, --measure networks timed whole, every distinct layer of them timed alone into the block
table, every predictor fitted on one half and judged on the other) and writes that JSON to OUT/explore-SPACE-
RUNTIME.json. It then prints, per space, each predictor's held-out judgement (within ±5%, ±10%, Kendall tau-b),
the whole / layer-sum ratios, and a second judgement of the block model's forms: leave-one-out over every
measured network (each predicted by the form fitted on all the others), so 40 held-out points instead of 20.

--repeat times every measured network whole a second time (the same harness and fingerprint, the cache
bypassed) after its layers, and judges that second timing against the first as if it were a predictor: the
measurement's agreement with itself, the most any predictor judged against one timing can show. It also
judges the block model against the mean of the two timings.

    python scripts/bench_block_model.py --storage sqlite:////tmp/pred/pred.db --out /tmp/pred
    python scripts/bench_block_model.py --configs mobile224 --runtime onnxruntime --storage ... --out ...
    python scripts/bench_block_model.py --configs cifar32 --measure 12 -n 60 --measure-time 0.05 --out /tmp/x  # smoke
    python scripts/bench_block_model.py --configs mobile224 --repeat --storage ... --out ...  # the ceiling
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from nasx.explore.output import judgement  # noqa: E402
from nasx.explore.run import explore, explore_timer  # noqa: E402
from nasx.explore.settings import ExploreSettings  # noqa: E402
from nasx.measure.block_model import FORMS  # noqa: E402
from nasx.measure.block_model import leave_one_out as loo_predictions  # noqa: E402
from nasx.space.config import load_space  # noqa: E402
from nasx.store.db import Store  # noqa: E402
from nasx.util.fmt import render_table  # noqa: E402
from nasx.util.stats import kendall_tau_b  # noqa: E402

GOAL = (0.9, 0.9)  # issue 24: at least 90% of held-out networks within ±10%, Kendall tau-b at least 0.9


def leave_one_out(subset, form: str) -> tuple[float, float, float]:
    """(within ±5%, within ±10%, tau-b) of each network predicted by `form` fitted on all the others."""
    y = [x.latency_ms for x in subset]
    return agreement(loo_predictions([x.layer_sum_ms for x in subset], [x.n_layers for x in subset], y, form), y)


def agreement(pred, y) -> tuple[float, float, float]:
    """(within ±5%, within ±10%, tau-b) of `pred` against `y`."""
    pred, y = np.asarray(pred, float), np.asarray(y, float)
    err = np.abs(pred - y) / y
    return float(np.mean(err <= 0.05 + 1e-12)), float(np.mean(err <= 0.1 + 1e-12)), kendall_tau_b(pred, y)


def retime(subset, settings: ExploreSettings) -> list[float]:
    """Each network of `subset` timed whole again, as explore timed it, the latency cache bypassed."""
    timer = explore_timer(settings, Store(settings.storage))
    return [timer.time_now(x.arch)["median_ms"] for x in subset]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="mobile224,mobile224_layers,cifar32")
    p.add_argument("--runtime", default="torch", choices=("torch", "onnxruntime"))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("-n", type=int, default=1000)
    p.add_argument("--measure", type=int, default=40)
    p.add_argument("--measure-time", type=float, default=0.5)
    p.add_argument("--storage", required=True)
    p.add_argument("--out", required=True, help="folder for the explore JSON files")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--repeat", action="store_true", help="time every measured network whole twice: the ceiling")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    summary = []
    for config in args.configs.split(","):
        settings = ExploreSettings(
            load_space(config),
            n=args.n,
            measure=args.measure,
            storage=args.storage,
            threads=args.threads,
            measure_time_s=args.measure_time,
            runtime=args.runtime,
            progress=not args.quiet,
        )
        result = explore(settings)
        doc = judgement(result)
        path = os.path.join(args.out, f"explore-{config}-{args.runtime}.json")
        with open(path, "w") as f:
            json.dump(doc, f, indent=1)
        ratio = [x.latency_ms / x.layer_sum_ms for x in result.subset]
        fp = result.fingerprint
        print(
            f"\n{config} ({args.runtime}, {fp['threads']} threads, {fp['hardware']}): {len(result.subset)} networks "
            f"timed whole ({result.measured_now} now), {result.layers} distinct layers ({result.layers_timed_now} "
            f"timed now, {result.layers_s:.0f} s); whole / sum of layers {min(ratio):.3f} .. {max(ratio):.3f} "
            f"(median {np.median(ratio):.3f}); wrote {path}"
        )
        rows = [
            [q["name"], q["n_heldout"], f"{q['within_5pct']:.0%}", f"{q['within_10pct']:.0%}"]
            + [f"{q['kendall_tau_b']:+.3f}"]
            for q in doc["predictors"]
        ]
        print(render_table(["predictor (half held out)", "n", "±5%", "±10%", "tau-b"], rows))
        loo = []
        for form in FORMS:
            w5, w10, tau = leave_one_out(result.subset, form)
            loo.append([form, len(result.subset), f"{w5:.0%}", f"{w10:.0%}", f"{tau:+.3f}"])
            summary.append((config, form, w10, tau))
        print(render_table(["block form (leave one out)", "n", "±5%", "±10%", "tau-b"], loo))
        if args.repeat:
            first = [x.latency_ms for x in result.subset]
            second = retime(result.subset, settings)
            mean = (np.array(first) + np.array(second)) / 2
            y_loo = loo_predictions([x.layer_sum_ms for x in result.subset], [x.n_layers for x in result.subset], mean)
            rows = []
            for name, pred, y in (
                ("second timing vs first", second, first),
                ("first timing vs second", first, second),
                ("scale+const (loo) vs mean of both", y_loo, mean),
            ):
                w5, w10, tau = agreement(pred, y)
                rows.append([name, len(first), f"{w5:.0%}", f"{w10:.0%}", f"{tau:+.3f}"])
            print(render_table(["the measurement against itself", "n", "±5%", "±10%", "tau-b"], rows))
    print("\nforms meeting the goal (leave one out: ≥90% within ±10%, tau-b ≥ 0.9) on every space:")
    for form in FORMS:
        met = all(w10 >= GOAL[0] and tau >= GOAL[1] for c, f, w10, tau in summary if f == form)
        print(f"  {form}: {'yes' if met else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

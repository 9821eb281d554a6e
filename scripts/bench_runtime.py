"""Does the runtime change the search's answer? Eager torch against ONNX Runtime on a sample of a space.

N architectures are drawn from the space (default mobile224, under --budget MAdds), each is built once and
timed in both runtimes side by side (nasx.measure.latency.measure_interleaved, round-robin over all 2N
measurements for ROUNDS rounds; ONNX Runtime with nasx's timing session, nasx.measure.onnx), and scored with
NASWOT (the search's default score, same seed). Prints Kendall's tau-b between the eager and the ONNX Runtime
latencies, the ORT/eager ratio spread, and which networks leave or join the (latency, score) front when the
runtime changes. Export time is reported apart.

    python scripts/bench_runtime.py [--n 40] [--rounds 3] [--time 0.5] [--threads N] [--budget 300M]
    python scripts/bench_runtime.py --config cifar32 --budget 12M --n 4 --rounds 1 --time 0.05   # a smoke run
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

import nasx  # noqa: E402
from nasx.measure.device import default_threads  # noqa: E402
from nasx.measure.latency import measure_interleaved, ort_model  # noqa: E402
from nasx.space.config import load_space  # noqa: E402
from nasx.util.pareto import nondominated  # noqa: E402
from nasx.util.stats import kendall_tau_b  # noqa: E402
from nasx.util.units import parse_count  # noqa: E402


def sample(space, n: int, budget: int | None, seed: int):
    rng, out, seen = random.Random(seed), [], set()
    for _ in range(200 * n):
        arch = space.random_arch(rng)
        h = arch.content_hash()
        if h in seen or (budget and nasx.cost(arch).madds > budget):
            continue
        seen.add(h)
        out.append(arch)
        if len(out) == n:
            break
    return out


def main() -> int:
    from nasx.score.proxies import get_score

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="mobile224")
    ap.add_argument("--budget", default="300M", help="MAdds budget of the sample (default 300M; none: unbounded)")
    ap.add_argument("--n", type=int, default=40, help="architectures (default 40)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--time", type=float, default=0.5, help="seconds per network per round and runtime")
    ap.add_argument("--threads", type=int, default=default_threads())
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    space = load_space(args.config)
    budget = None if args.budget == "none" else parse_count(args.budget, "--budget")
    archs = sample(space, args.n, budget, args.seed)
    if len(archs) < 3:
        print(f"only {len(archs)} architectures under the budget: raise --budget", file=sys.stderr)
        return 2
    score = get_score("naswot")
    modules, scores, export_s = [], [], []
    for arch in archs:
        torch.manual_seed(0)
        m = nasx.build(arch).eval()
        modules.append(m)
        scores.append(float(score(m, arch.input, 0)))
        export_s.append(ort_model(m, arch.input, 1, args.threads).export_s)  # exported once, before timing
    eager = measure_interleaved(modules, space.input, rounds=args.rounds, time_s=args.time, threads=args.threads)
    ort = measure_interleaved(
        modules, space.input, rounds=args.rounds, time_s=args.time, threads=args.threads, runtime="onnxruntime"
    )
    lat_e = [statistics.median(r["median_ms"] for r in rs) for rs in eager]
    lat_o = [statistics.median(r["median_ms"] for r in rs) for rs in ort]
    ratios = sorted(o / e for o, e in zip(lat_o, lat_e, strict=True))
    tau = kendall_tau_b(lat_e, lat_o)
    print(
        f"{len(archs)} architectures of {space.name} under {args.budget} MAdds, {args.threads} threads, "
        f"{args.rounds} rounds of {args.time} s per runtime"
    )
    print(f"Kendall tau-b, eager vs ONNX Runtime latency: {tau:+.3f}")
    print(f"ORT / eager latency: median {statistics.median(ratios):.3f}, range {ratios[0]:.3f}..{ratios[-1]:.3f}")
    print(f"ONNX export: median {statistics.median(export_s):.2f} s per network (not in the latencies)")

    def front(lat):
        points = set(nondominated(list(zip(lat, scores, strict=True))))
        return {i for i, p in enumerate(zip(lat, scores, strict=True)) if p in points}

    fe, fo = front(lat_e), front(lat_o)
    print(f"front: {len(fe)} members in eager, {len(fo)} in ONNX Runtime, {len(fe & fo)} in both")
    for label, members in (("leave the front in ONNX Runtime", fe - fo), ("join the front in ONNX Runtime", fo - fe)):
        for i in sorted(members, key=lambda i: lat_e[i]):
            print(
                f"  {label}: #{i} {archs[i].families()} eager {lat_e[i]:.2f} ms, ORT {lat_o[i]:.2f} ms, "
                f"score {scores[i]:.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

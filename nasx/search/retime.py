"""The front re-timed before it is shown. Each trial was timed once, alone, at some moment of the search; a
front member can owe its place to a quiet second or lose it to a noisy one. At the end of a search the
front members, and the zoo network nearest the budget as a reference, are timed again side by side
(nasx.measure.latency.measure_interleaved: round-robin over the members for RETIME_ROUNDS rounds, each
measurement drift-corrected through the calibrations that bracket it, at most about a second apart, on the
scale of the storage's reference), and the confirmed latency of a member is the median over the rounds.

The trial's first measurement stays its Optuna value (values are immutable once a trial is complete) and its
`latency` attr; the confirmed one is the `latency_confirmed` attr (written into the finished trial,
nasx.store.db.set_finished_trial_user_attr) and is what the stored front, `nasx pareto`, the report and
`nasx export --best/--knee` read (nasx.store.studies.latency_ms). A member that the confirmed numbers show
dominated by another member leaves the stored front; a trial they leave undominated is re-timed and joins it."""

from __future__ import annotations

import copy
import dataclasses
import statistics
import time
from dataclasses import dataclass, field

from nasx.arch import Arch
from nasx.errors import ArchError, NasxError
from nasx.util.pareto import dominates

RETIME_ROUNDS = 3
RETIME_S = 0.2  # timed per member per round (after a short warm-up), a calibration between members: the rounds of
# a member differ by the machine's drift between rounds (median 4-8% here), not by the window (0.3 s before)


@dataclass
class Retimed:
    label: str  # "#12" for a trial, the zoo name for the reference
    first_ms: float | None  # the search's measurement (None for the reference)
    confirmed_ms: float
    iqr_ms: float
    rounds_ms: list[float]
    score: float | None = None
    number: int | None = None


@dataclass
class RetimeResult:
    members: list[Retimed]
    reference: Retimed | None
    front: list  # the front after re-timing (FrozenTrials), fastest confirmed first
    left: list[int] = field(default_factory=list)  # trial numbers the confirmed numbers put off the front
    moved: list[tuple[int, int, int]] = field(default_factory=list)  # (trial, rank first, rank confirmed)
    seconds: float = 0.0
    readmitted: list[int] = field(default_factory=list)  # trials the re-timed numbers left undominated, re-timed too
    note: str = ""  # why the re-timing went without a reference, when it did

    def summary(self) -> str:
        lines = [
            f"front re-timed side by side ({len(self.members)} members, {RETIME_ROUNDS} rounds, {self.seconds:.1f} s):"
        ]
        if self.moved:
            lines.append(
                "  changed rank (by latency, fastest = 1): " + ", ".join(f"#{n} {a} -> {b}" for n, a, b in self.moved)
            )
        else:
            lines.append("  no member changed rank")
        if self.left:
            lines.append(
                "  left the front (dominated by another member once re-timed): " + ", ".join(f"#{n}" for n in self.left)
            )
        if self.readmitted:
            lines.append(
                "  joined the front (undominated once the members were re-timed, then re-timed too): "
                + ", ".join(f"#{n}" for n in self.readmitted)
            )
        if self.note:
            lines.append(f"  {self.note}")
        if self.reference is not None:
            r = self.reference
            lines.append(
                f"  reference {r.label}: {r.confirmed_ms:.2f} ± {r.iqr_ms:.2f} ms"
                + (f", score {r.score:.2f}" if r.score is not None else "")
            )
        return "\n".join(lines)


def nearest_zoo(input_shape, budget: int | None, metric: str = "madds") -> Arch | None:
    """The zoo network whose compute (at the study's input, re-instantiated when the zoo made it for another)
    is nearest the budget; None without a compute budget."""
    from nasx import zoo
    from nasx.arch import zoo_arch
    from nasx.cost import cost

    if not budget:
        return None
    best = None
    for name in zoo.names():
        arch = zoo_arch(name)
        if tuple(arch.input) != tuple(input_shape):
            at = "x".join(map(str, input_shape[1:]))
            arch = dataclasses.replace(arch, input=tuple(input_shape), name=f"{name}@{at}")
        try:
            used = getattr(cost(arch), metric)
        except ArchError:
            continue
        key = abs(used - budget)
        if best is None or key < best[0]:
            best = (key, arch)
    return best[1] if best else None


def _summarise(rounds: list[dict], fp: dict, reference_ms: float | None) -> tuple[float, float, list[float]]:
    from nasx.measure.latency import drift_corrected

    if reference_ms is not None and "calibration" in fp:
        rounds = [drift_corrected(r, reference_ms) for r in rounds]
    medians = [r["median_ms"] for r in rounds]
    return statistics.median(medians), statistics.median(r["iqr_ms"] for r in rounds), medians


def retime_front(study, front: list, objective, rounds: int = RETIME_ROUNDS, time_s: float = RETIME_S) -> RetimeResult:
    """Re-time `front` (FrozenTrials, feasible) with the objective's settings; record and return the result.
    A member that re-times slower can leave undominated a trial it dominated by the first numbers: such a
    trial is re-timed too, and so on until the shown numbers' non-dominated set is all re-timed, so the stored
    front is the front of the latencies `nasx trials` shows."""
    from nasx.store.studies import latency_ms  # shown: a confirmed latency from an earlier run counts

    t0 = time.perf_counter()
    members, reference, records, note = _retime(study, front, objective, rounds, time_s, reference=True)
    candidates = _feasible(study, front)
    timed = {m.number: m for m in members}
    readmitted: list[int] = []
    while True:
        shown = {
            t.number: (timed[t.number].confirmed_ms if t.number in timed else latency_ms(t), t.values[1])
            for t in candidates
        }
        undominated = {n for n, p in shown.items() if not any(dominates(q, p) for m, q in shown.items() if m != n)}
        new = [t for t in candidates if t.number in undominated and t.number not in timed]
        if not new:
            break
        more, _, more_records, _ = _retime(study, new, objective, rounds, time_s, reference=False)
        members += more
        records.update(more_records)
        timed.update((m.number, m) for m in more)
        readmitted += [m.number for m in more]
    by_first = sorted(members, key=lambda m: (m.first_ms, m.number))
    by_confirmed = sorted(members, key=lambda m: (m.confirmed_ms, m.number))
    rank_first = {m.number: i + 1 for i, m in enumerate(by_first)}
    moved = [
        (m.number, rank_first[m.number], i + 1) for i, m in enumerate(by_confirmed) if rank_first[m.number] != i + 1
    ]
    kept = [m for m in by_confirmed if m.number in undominated]
    by_number = {t.number: t for t in candidates}
    new_front = []
    for m in kept:  # the study's own handle may cache finished trials: give the copies the attr written
        t = copy.deepcopy(by_number[m.number])
        t.user_attrs = {**t.user_attrs, "latency_confirmed": records[m.number]}
        new_front.append(t)
    left = [m.number for m in by_confirmed if m not in kept]
    return RetimeResult(
        members,
        reference,
        new_front,
        left,
        moved,
        time.perf_counter() - t0,
        [n for n in readmitted if n in undominated],
        note,
    )


def _feasible(study, front: list) -> list:
    """The trials whose shown latency can place them on the front: `front` itself, then every other feasible,
    measured trial, one per architecture (the first trial of an arch TPE proposed again, as
    nasx.store.studies.pareto_front lists it)."""
    import optuna

    out = list(front)
    seen = {t.user_attrs.get("arch_hash", t.number) for t in front}
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        key = t.user_attrs.get("arch_hash", t.number)
        if t.values is None or not t.user_attrs.get("feasible") or key in seen:
            continue
        seen.add(key)
        out.append(t)
    return out


def _retime(study, trials: list, objective, rounds: int, time_s: float, reference: bool):
    """Time `trials` side by side (with the zoo reference when asked), record each one's latency_confirmed and
    return (members, reference, {trial number: record}, why the reference was left out or "")."""
    from nasx.build import build_seeded
    from nasx.measure.device import runtime_of
    from nasx.measure.latency import calibration_workload, measure_interleaved
    from nasx.store.db import set_finished_trial_user_attr
    from nasx.store.studies import trial_id

    s, fp = objective.s, objective.fp
    archs = [Arch.from_dict(t.user_attrs["arch"]) for t in trials]
    ref_arch = nearest_zoo(s.space.input, s.budgets.compute, s.budgets.metric) if reference else None
    ref_score, note = None, ""
    if ref_arch is not None:
        try:  # scored before anything is timed: a score that cannot score it (a table lookup) drops it
            ref_score = objective._score(ref_arch, None, {"arch_hash": ref_arch.content_hash()})
        except NasxError:
            note = f"no reference: --score {s.score} cannot score {ref_arch.name}; the front was re-timed without it"
            ref_arch = None
    modules = [build_seeded(arch) for arch in archs + ([ref_arch] if ref_arch is not None else [])]
    calibration = calibration_workload(s.space.input) if "calibration" in fp else None
    timed = measure_interleaved(
        modules,
        s.space.input,
        rounds=rounds,
        time_s=time_s,
        device=s.device,
        batch=s.batch,
        threads=s.threads,
        runtime=runtime_of(fp),
        calibration=calibration,
    )
    reference_ms = None
    if calibration is not None:
        reference_ms = objective.store.get_calibration(objective.fp_hash) or objective.store.put_calibration(
            objective.fp_hash, fp, statistics.median(r["calibration_ms"] for r in timed[0])
        )
    members, records = [], {}
    for t, per_round in zip(trials, timed, strict=False):
        confirmed, iqr, medians = _summarise(per_round, fp, reference_ms)
        members.append(Retimed(f"#{t.number}", t.values[0], confirmed, iqr, medians, t.values[1], t.number))
        record = {
            "median_ms": confirmed,
            "iqr_ms": iqr,
            "rounds_ms": medians,
            "rounds": rounds,
            "time_s": time_s,
            "interleaved_with": len(modules),
        }
        set_finished_trial_user_attr(study, trial_id(t), "latency_confirmed", record)
        records[t.number] = record
    ref = None
    if ref_arch is not None:
        confirmed, iqr, medians = _summarise(timed[-1], fp, reference_ms)
        ref = Retimed(ref_arch.name, None, confirmed, iqr, medians, ref_score)
        study.set_user_attr(
            "retime_reference",
            {"name": ref_arch.name, "median_ms": confirmed, "iqr_ms": iqr, "rounds_ms": medians, "score": ref_score},
        )
    return members, ref, records, note

"""Reading a study back: find it in a storage (the most recent one by default), its Pareto front,
single trials with clear errors for unknown, rejected or failed ones, and trials as table rows and JSON
records. Nothing here writes trials."""

from __future__ import annotations

import contextlib
import json
import warnings

import optuna

from nasx.errors import NasxError, StorageError
from nasx.store.db import (
    DEFAULT_STORAGE,
    engine_kwargs,
    explain,
    sqlite_path,
)
from nasx.util.fmt import human, render_table


@contextlib.contextmanager
def experimental_optuna():
    """Around the experimental optuna features nasx relies on on purpose (heartbeats and their retry callback,
    set_metric_names): their ExperimentalWarning says nothing to users. Local, so that importing nasx never
    changes the process's warning filters."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def trial_id(trial) -> int:
    """The storage's id of a trial (optuna.Trial or FrozenTrial), which optuna's storage API is keyed by (a
    trial's number is unique only within its study). Optuna has no public accessor for it: this is nasx's one
    read of the private `_trial_id`, kept here so an optuna change breaks one line."""
    return trial._trial_id


def pareto_front(study: optuna.Study) -> list:
    """Feasible, measured, non-dominated trials, fastest first; an architecture TPE proposed again (its
    latency and score then come from the caches) is listed once, at its first trial.

    The front Study.best_trials gives (latency minimised, score maximised; a constrained study's front is of its
    trials meeting every constraint; a point equal to a front point is on the front too), read without copying
    the study: best_trials deep-copies every trial, about 0.1 s a call at 500 trials, and a screening search
    asks for the front once a candidate."""
    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if any(t.constraints for t in trials):
        trials = [t for t in trials if all(c <= 0.0 for c in t.constraints.values())]
    seen, front, best_point = set(), [], None
    for t in sorted(trials, key=lambda t: (t.values[0], -t.values[1], t.number)):
        point = (t.values[0], t.values[1])
        if best_point is not None and point[1] <= best_point[1] and point != best_point:
            continue  # dominated by the last front point: as fast or slower, no better
        best_point = point
        key = t.user_attrs.get("arch_hash", t.number)
        if t.user_attrs.get("feasible") and key not in seen:
            seen.add(key)
            front.append(t)
    return front


def latency_ms(t) -> float:
    """A trial's latency as shown: the front's re-timed (confirmed) median where the search re-timed it
    (nasx.search.retime), else its first measurement (the Optuna value)."""
    confirmed = t.user_attrs.get("latency_confirmed")
    return confirmed["median_ms"] if confirmed else t.values[0]


def latency_iqr_ms(t) -> float | None:
    confirmed = t.user_attrs.get("latency_confirmed")
    return confirmed["iqr_ms"] if confirmed else t.user_attrs.get("latency", {}).get("iqr_ms")


def knee_trial(front: list):
    """The one recommendation of a front: its knee (nasx.util.pareto.knee) on the shown latencies; None for a
    front of fewer than 3 members."""
    from nasx.util.pareto import knee

    i = knee([(latency_ms(t), t.values[1]) for t in front])
    return None if i is None else front[i]


STATES = {"COMPLETE": "feasible", "PRUNED": "rejected", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}


def trial_status(t) -> str:
    """feasible | rejected (over budget, never built) | repeat (of an earlier trial's architecture, re-sampled)
    | prefiltered | screened (its predicted latency off the front: never timed whole) | failed | running | waiting
    | pruned (not by nasx)."""
    status = STATES.get(t.state.name, t.state.name.lower())
    if status in ("feasible", "rejected") and "repeat_of" in t.user_attrs:  # an architecture an earlier trial holds
        return "repeat"
    if status == "rejected" and t.user_attrs.get("prefiltered"):
        return "prefiltered"
    if status == "rejected" and t.user_attrs.get("screened"):
        return "screened"
    return "pruned" if status == "rejected" and t.user_attrs.get("feasible") is not False else status


def latency_scale(trials) -> str:
    """`_scale`, and for a re-timed front what its first-ms column is."""
    line = _scale(trials)
    if any("latency_confirmed" in t.user_attrs for t in trials):
        line += "\nlatency ms of the front: re-timed side by side at the end; first ms: its first measurement"
    return line


def _scale(trials) -> str:
    """Which scale a study's latencies are on. Drift-corrected ones are rescaled to the speed this machine had
    when the storage's first calibration was taken (nasx.measure.latency), so their unit is that storage's:
    the line names the calibration network's time at that reference, recovered from any trial as
    calibration / drift. Raw ones are this machine's milliseconds at the time of each measurement (for a
    re-timed front, the raw median of each member's first measurement)."""
    retimed = any("latency_confirmed" in t.user_attrs for t in trials)
    for t in trials:
        lat, fp = t.user_attrs.get("latency") or {}, t.user_attrs.get("fingerprint") or {}
        before, after, drift = (lat.get(k) for k in ("calibration_before_ms", "calibration_after_ms", "drift"))
        if before and after and drift:
            reference = lat.get("reference_ms") or (before + after) / 2 / drift
            return (
                f"latency ms: drift-corrected to this storage's reference speed ({fp.get('calibration', '?')} = "
                f"{reference:.2f} ms)\nraw ms: this machine's milliseconds at measurement time"
                + (" (of the first measurement)" if retimed else "")
            )
        if lat:
            return "latency ms: this machine's milliseconds at measurement time (raw, no drift correction)"
    return "latency: none measured yet"


def front_table(front: list, status: bool = False, knee=None) -> str:
    """Trials as a table under a line naming the latency scale: latency median ± IQR (drift-corrected where
    the study is; re-timed where the search re-timed the front, the first measurement in its own column)
    beside the raw median, score, MAdds, MAC, params, block-family mix. With `status`, any trial (rejected,
    failed) gets a row and a status column says why it has no latency. `knee`: that trial is marked."""
    rows = []
    retimed = any("latency_confirmed" in t.user_attrs for t in front)
    corrected = any("drift" in t.user_attrs.get("latency", {}) for t in front)
    for t in front:
        a = t.user_attrs
        lat = a.get("latency", {})
        fams = ", ".join(f"{k} {v}" for k, v in sorted(a.get("families", {}).items(), key=lambda kv: -kv[1]))
        measured = t.values is not None and "latency" in a
        shown = f"{latency_ms(t):.2f} ± {_spread(latency_iqr_ms(t) or 0)}" if measured else "-"
        first = f"{lat.get('median_ms', t.values[0]):.2f}" if measured and "latency_confirmed" in a else "-"
        row = [
            t.number,
            shown,
            f"{t.values[1]:.2f}" if measured else "-",
            human(a["madds"]) if "madds" in a else "-",
            human(a["mac_elements"]) if "mac_elements" in a else "-",
            human(a["params"]) if "params" in a else "-",
            fams,
        ]
        if corrected:
            row.insert(2, f"{lat['raw_median_ms']:.2f}" if measured and "raw_median_ms" in lat else "-")
        if retimed:  # its own column: inside the latency cell it widened the table past 100 columns
            row.insert(2, first)
        if status:
            why = a.get("reason") or t.system_attrs.get("fail_reason", "")
            row.insert(1, trial_status(t) + (f": {why}" if why and trial_status(t) != "feasible" else ""))
        if knee is not None:
            row.append("knee" if t.number == knee.number else "")
        rows.append(row)
    header = [
        "trial",
        "latency ms",
        "score",
        "MAdds",
        "MAC",
        "params",
        "families",
    ]
    if corrected:
        header.insert(2, "raw ms")
    if retimed:
        header.insert(2, "first ms")
    if status:
        header.insert(1, "status")
    if knee is not None:
        header.append("pick")
    families = header.index("families")  # wrapped first (the knee's pick column, when shown, comes after it)
    return latency_scale(front) + "\n" + render_table(header, rows, wrap=(families, 1) if status else (families,))


def trial_record(t, knee=None) -> dict:
    """A trial as plain JSON: objectives, costs, status and the rebuildable arch (None where not recorded);
    what front_table shows: the raw median beside the (drift-corrected) latency, and `knee` marked."""
    a = t.user_attrs
    measured = t.values is not None and "latency" in a
    return {
        "trial": t.number,
        "status": trial_status(t),
        "knee": knee is not None and t.number == knee.number,
        "latency_ms": latency_ms(t) if measured else None,
        "latency_iqr_ms": latency_iqr_ms(t),
        "latency_first_ms": t.values[0] if measured else None,
        "latency_raw_ms": a.get("latency", {}).get("raw_median_ms") if measured else None,
        "latency_confirmed": "latency_confirmed" in a,
        "score": t.values[1] if measured else None,
        "madds": a.get("madds"),
        "flops": a.get("flops"),
        "mac_elements": a.get("mac_elements"),
        "mac_bytes": a.get("mac_bytes"),
        "params": a.get("params"),
        "activations": a.get("activations"),
        "families": a.get("families", {}),
        "reason": a.get("reason", ""),
        "arch_hash": a.get("arch_hash"),
        "arch": a.get("arch"),
    }


def summary_json(trials: list, knee=None) -> str:
    return json.dumps([trial_record(t, knee) for t in trials], indent=1)


def open_storage(url: str = DEFAULT_STORAGE) -> optuna.storages.RDBStorage:
    """Optuna's storage of an existing database; never creates an SQLite file that is not there."""
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise StorageError(f"no study database at {path} ({url}); run `nasx search` first or pass --storage")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs(url))
    except Exception as e:  # optuna wraps driver errors in several types
        raise explain(url, e) from None


def is_nasx_study(study) -> bool:
    return study.user_attrs.get("nasx") == "search"


def latest_study_name(storage: optuna.storages.RDBStorage, url: str) -> str:
    """The nasx study with the newest trial (start or completion time); ties and trial-less studies are
    ordered by study id, so a study created later wins."""
    from sqlalchemy import text

    studies = [s for s in storage.get_all_studies() if is_nasx_study(s)]
    if not studies:
        raise StorageError(f"no nasx study in {url}; run `nasx search` first or pass --storage")
    newest: dict[int, object] = {}
    with storage.engine.connect() as c:
        rows = c.execute(
            text("SELECT study_id, MAX(datetime_start), MAX(datetime_complete) FROM trials GROUP BY study_id")
        ).all()
    for study_id, started, completed in rows:
        times = [t for t in (started, completed) if t is not None]
        newest[study_id] = max(times) if times else None

    def key(s):
        t = newest.get(s._study_id)
        return (t is not None, str(t) if t is not None else "", s._study_id)

    return max(studies, key=key).study_name


def load_study(url: str = DEFAULT_STORAGE, name: str | None = None) -> optuna.Study:
    """A nasx study by name, or the most recent nasx study in the storage when no name is given."""
    storage = open_storage(url)
    if name is None:
        name = latest_study_name(storage, url)
    else:
        known = [s.study_name for s in storage.get_all_studies()]
        if name not in known:
            raise StorageError(f"no study {name!r} in {url}; studies there: {', '.join(known) or 'none'}")
    study = optuna.load_study(study_name=name, storage=storage)
    if not is_nasx_study(study):
        raise StorageError(f"study {name!r} in {url} was not made by `nasx search`; pick another --study")
    return study


def study_front(study: optuna.Study) -> list:
    """The front `nasx search` stored (fastest first); recomputed when the study has none stored yet
    (a search stopped before it finished)."""
    numbers = study.user_attrs.get("pareto_front")
    if numbers is None:
        return pareto_front(study)
    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    front = [by_number[n] for n in numbers if n in by_number]
    return sorted(front, key=lambda t: (latency_ms(t), t.number))


def get_trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        if t.number == number:
            return t
    span = f"trials 0..{len(trials) - 1}" if trials else "no trials"
    raise StorageError(f"study {study.study_name!r} has no trial {number} ({span})")


def feasible_trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    """A trial that was built and measured; anything else is one clear error."""
    t = get_trial(study, number)
    status = trial_status(t)
    if status == "feasible" and t.user_attrs.get("feasible") and "arch" in t.user_attrs:
        return t
    if status == "rejected":
        why = f"rejected ({t.user_attrs.get('reason') or 'over budget'}): it was never built or measured"
    elif status == "failed":
        why = f"failed ({t.system_attrs.get('fail_reason') or 'no reason recorded'})"
    elif status == "screened":
        why = (
            f"screened out: its latency was predicted ({t.user_attrs.get('predicted_latency_ms', 0):.2f} ms) from the "
            f"block table, off the front, so it was never timed whole (search with --no-screen to time every "
            f"candidate)"
        )
    elif status == "repeat":
        why = f"a repeat of trial {t.user_attrs['repeat_of']}'s architecture (re-sampled, never measured again)"
    else:
        why = f"{status}: it has no measured architecture"
    raise NasxError(
        f"trial {number} of study {study.study_name!r} was {why}; pick a feasible trial, e.g. from `nasx pareto`"
    )


def counts(study: optuna.Study) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        s = trial_status(t)
        out[s] = out.get(s, 0) + 1
    return out


def _spread(iqr_ms: float) -> str:
    """An IQR in 4 digits at most: a noisy measurement's spread (120.98 ms on a loaded machine) must not widen
    the latency column past the 100 columns the table keeps to, and its hundredths say nothing there."""
    return f"{iqr_ms:.2f}" if iqr_ms < 10 else f"{iqr_ms:.1f}" if iqr_ms < 100 else f"{iqr_ms:.0f}"

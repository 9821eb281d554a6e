"""Reading a study back: find it in a storage (the most recent one by default), its stored Pareto front,
and single trials with clear errors for unknown, rejected or failed ones. Nothing here writes trials."""

from __future__ import annotations

import warnings

import optuna

from nasx.errors import NasxError, StorageError
from nasx.store import DEFAULT_STORAGE, engine_kwargs, explain, sqlite_path

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


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
        rows = c.execute(text("SELECT study_id, MAX(datetime_start), MAX(datetime_complete) FROM trials "
                              "GROUP BY study_id")).all()
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
    from nasx.search import pareto_front

    numbers = study.user_attrs.get("pareto_front")
    if numbers is None:
        return pareto_front(study)
    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    front = [by_number[n] for n in numbers if n in by_number]
    return sorted(front, key=lambda t: t.values[0])


def get_trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        if t.number == number:
            return t
    span = f"trials 0..{len(trials) - 1}" if trials else "no trials"
    raise StorageError(f"study {study.study_name!r} has no trial {number} ({span})")


def feasible_trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    """A trial that was built and measured; anything else is one clear error."""
    from nasx.search import trial_status

    t = get_trial(study, number)
    status = trial_status(t)
    if status == "feasible" and t.user_attrs.get("feasible") and "arch" in t.user_attrs:
        return t
    if status == "rejected":
        why = f"rejected ({t.user_attrs.get('reason') or 'over budget'}): it was never built or measured"
    elif status == "failed":
        why = f"failed ({t.system_attrs.get('fail_reason') or 'no reason recorded'})"
    else:
        why = f"{status}: it has no measured architecture"
    raise NasxError(f"trial {number} of study {study.study_name!r} was {why}; pick a feasible trial, e.g. from "
                    f"`nasx pareto`")


def counts(study: optuna.Study) -> dict[str, int]:
    from nasx.search import trial_status

    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        s = trial_status(t)
        out[s] = out.get(s, 0) + 1
    return out


def study_header(study: optuna.Study, url: str, front: list) -> str:
    """Two lines above a table: which study, how many trials of each kind, what the columns measure."""
    a = study.user_attrs
    c = counts(study)
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(c.items(), key=lambda kv: -kv[1]))
    budget = a.get("budget")
    from nasx.fmt import human

    return (f"study {study.study_name!r} in {url}: {sum(c.values())} trials ({kinds or 'none'}); front of "
            f"{len(front)}\nspace {a.get('config_name')}, budget {a.get('budget_metric', 'madds')} "
            f"{human(budget) if budget else 'unbounded'}; latency on {a.get('device')} batch {a.get('batch')}; "
            f"score {a.get('score')}; MAdds/MAC/params from the cost core (MAC in elements)")

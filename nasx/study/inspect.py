"""The header `nasx pareto` and `nasx trials` print above a study's table."""

from __future__ import annotations

import optuna

from nasx.store.studies import counts
from nasx.util.fmt import human


def study_header(study: optuna.Study, url: str, front: list) -> str:
    """Two lines above a table: which study, how many trials of each kind, what the columns measure."""
    a = study.user_attrs
    c = counts(study)
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(c.items(), key=lambda kv: -kv[1]))
    budget = a.get("budget")
    return (
        f"study {study.study_name!r} in {url}: {sum(c.values())} trials ({kinds or 'none'}); front of "
        f"{len(front)}\nspace {a.get('config_name')}, budget {a.get('budget_metric', 'madds')} "
        f"{human(budget) if budget else 'unbounded'}; latency on {a.get('device')} batch {a.get('batch')}; "
        f"score {a.get('score')}; MAdds/MAC/params from the cost core (MAC in elements)"
    )

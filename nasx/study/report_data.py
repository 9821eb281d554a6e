"""What a report shows, read from a study: its trials sorted by status, its front and knee (ReportData), and
the reference models' points (Point). nasx.study.report fills the references; report_figures draws and
report_page writes what is here."""

from __future__ import annotations

from dataclasses import dataclass, field

from nasx.store.studies import knee_trial, study_front, trial_status
from nasx.util.stats import kendall_tau_b, spearman


@dataclass
class Point:
    label: str
    latency_ms: float
    score: float | None
    madds: int
    mac: int
    params: int
    hover: str
    dominated_by: list[int] = field(default_factory=list)  # front trials that dominate this reference


@dataclass
class ReportData:
    study: object
    url: str
    measured: list  # feasible, measured trials
    infeasible: list  # measured but violating a constraint
    rejected: list  # never measured (over budget)
    failed: list
    front: list
    refs: list[Point] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    knee: object = None  # the front's knee (nasx.store.studies.knee_trial), the one recommendation

    def corr(self, key: str, objective: int = 0) -> tuple[float, float, int]:
        """Rank correlations of a cost attribute with latency (objective 0) or score (1), measured trials."""
        x = [t.user_attrs[key] for t in self.measured]
        y = [t.values[objective] for t in self.measured]
        return spearman(x, y), kendall_tau_b(x, y), len(x)


def collect(study, url: str) -> ReportData:
    measured, infeasible, rejected, failed = [], [], [], []
    for t in study.get_trials(deepcopy=False):
        status = trial_status(t)
        if status == "feasible" and t.values is not None and "latency" in t.user_attrs:
            violated = any(v > 0 for v in (getattr(t, "constraints", None) or {}).values())
            (infeasible if violated else measured).append(t)
        elif status == "rejected":
            rejected.append(t)
        elif status == "failed":
            failed.append(t)
    front = study_front(study)
    return ReportData(study, url, measured, infeasible, rejected, failed, front, knee=knee_trial(front))

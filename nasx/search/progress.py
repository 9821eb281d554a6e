"""The progress line shown while a search runs."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import optuna

from nasx.util.fmt import duration

# No ETA from fewer finished trials or fewer seconds of them: the first trials carry the warm-up (lazy imports,
# the first build and calibration) and a run mixes instant rejections with timed networks, so a rate from one
# or two trials was off by 30x (ETA 230m for a run of 7 minutes). After 5 trials and 30 s the mean holds
# several of each kind and the warm-up is a small part of it.
ETA_MIN_TRIALS = 5
ETA_MIN_S = 30.0


@dataclass
class Progress:
    """Counts shown on the terminal while the search runs."""

    total: int | None
    timeout: float | None
    out: object = sys.stderr
    start: float = field(default_factory=time.perf_counter)
    done: int = 0
    feasible: int = 0
    rejected: int = 0
    failed: int = 0
    prefiltered: int = 0
    screened: int = 0
    repeats: int = 0  # re-sampled proposals of an architecture the study already held (not in done)
    best_latency: float = math.inf
    measure_s: float = 0.0
    enabled: bool = True
    times: dict = field(default_factory=dict)  # seconds per step of the trials run here (time_split)
    trials_start: float | None = None  # when the trials began: the ETA's rate counts from it

    def started(self) -> None:
        """The trials begin now: what came before (opening the study) is not part of their rate."""
        self.trials_start = time.perf_counter()

    def update(self, trial: optuna.trial.FrozenTrial) -> None:
        attrs = trial.user_attrs
        repeat = "repeat_of" in attrs
        self.done += not repeat or bool(attrs.get("repeat_counted"))
        if repeat:
            self.repeats += 1
        elif trial.state == optuna.trial.TrialState.COMPLETE:
            self.feasible += 1
            self.best_latency = min(self.best_latency, trial.values[0])
        elif attrs.get("prefiltered"):
            self.prefiltered += 1
        elif attrs.get("screened"):
            self.screened += 1
        elif attrs.get("feasible") is False:
            self.rejected += 1
        else:
            self.failed += 1
        self.measure_s += attrs.get("time_measure_s", 0.0)
        add_times(self.times, attrs)
        retried = trial.system_attrs.get("retry_history")
        if retried:  # optuna's heartbeat retry re-runs a trial whose process died; say which
            self.note(f"trial {retried[-1]} was interrupted (its process stopped); retried as {trial.number}")
        if self.enabled:
            write_status(self.out, self.line())

    def note(self, text: str) -> None:
        """A line of its own above the progress line (shown even with progress off)."""
        tty = self.enabled and _isatty(self.out)
        self.out.write(("\r\x1b[K" if tty else "") + text + "\n")
        self.out.flush()

    def line(self) -> str:
        now = time.perf_counter()
        elapsed = now - self.start
        running = now - (self.start if self.trials_start is None else self.trials_start)
        eta = ""
        if self.total:
            if self.done >= ETA_MIN_TRIALS and running >= ETA_MIN_S:
                eta = f" | ETA {duration(running / self.done * (self.total - self.done))}"
        elif self.timeout:
            eta = f" | ETA {duration(max(0.0, self.timeout - elapsed))}"
        best = f"{self.best_latency:.2f} ms" if self.best_latency < math.inf else "-"
        total = f"/{self.total}" if self.total else ""
        return (
            f"trial {self.done}{total} | feasible {self.feasible} | rejected {self.rejected}"
            f"{f' | failed {self.failed}' if self.failed else ''}"
            f"{f' | prefiltered {self.prefiltered}' if self.prefiltered else ''}"
            f"{f' | screened {self.screened}' if self.screened else ''}"
            f"{f' | repeats re-sampled {self.repeats}' if self.repeats else ''} | best latency {best}"
            f" | {duration(elapsed)}{eta}"
        )


def add_times(times: dict, attrs: dict) -> None:
    """Add one trial's step times (its time_*_s attrs) into `times`: sample, cost, build, score, and the
    latency measurement split into the network's own timing, the calibration around it and the ONNX export.
    A cached latency counts its lookup only."""
    if "repeat_of" in attrs:  # a repeat carries its first trial's results and step times: only its sampling is its own
        times["sample"] = times.get("sample", 0.0) + attrs.get("time_sample_s", 0.0)
        return
    for key in ("sample", "cost", "build", "score", "screen"):
        times[key] = times.get(key, 0.0) + attrs.get(f"time_{key}_s", 0.0)
    # screening's layer timing (its calibration pairs and lock waits apart, as a network's are)
    layers, layer_timing = attrs.get("time_layers_s", 0.0), attrs.get("layer_timing") or {}
    layer_calibrate, layer_wait = layer_timing.get("calibration_s", 0.0), layer_timing.get("lock_wait_s", 0.0)
    times["layer timing"] = times.get("layer timing", 0.0) + max(0.0, layers - layer_calibrate - layer_wait)
    measure = attrs.get("time_measure_s", 0.0)
    lat = attrs.get("latency", {}) if not attrs.get("latency_cached") else {}
    calibrate, export = lat.get("calibration_s") or 0.0, lat.get("export_s") or 0.0
    wait = lat.get("lock_wait_s") or 0.0
    times["calibrate"] = times.get("calibrate", 0.0) + calibrate + layer_calibrate
    times["export"] = times.get("export", 0.0) + export
    times["lock wait"] = times.get("lock wait", 0.0) + wait + layer_wait
    times["measure"] = times.get("measure", 0.0) + max(0.0, measure - calibrate - export - wait)


def time_split(times: dict, elapsed_s: float, retime_s: float = 0.0) -> str:
    """Where a search's wall time went, one line: the sweep (a new study's free draws), build, score, layer
    timing and screen (screening: the block table's new layers, the model's fit and verdict), measure (networks
    timed whole), calibrate, (export, waiting for the host lock while another process timed,) re-time, the rest
    (sampling, cost, database writes, start-up)."""
    steps = ("sweep", "build", "score", "layer timing", "screen", "measure", "calibrate", "export", "lock wait")
    parts = {k: times.get(k, 0.0) for k in steps}
    parts["re-time"] = retime_s
    parts["rest"] = max(0.0, elapsed_s - sum(parts.values()))
    total = elapsed_s or 1.0
    return "time: " + ", ".join(
        f"{k} {v:.1f} s ({100 * v / total:.0f}%)"
        for k, v in parts.items()
        if v or k in ("build", "score", "measure", "rest")
    )


def _isatty(out) -> bool:
    return getattr(out, "isatty", lambda: False)()


def write_status(out, line: str) -> None:
    """A progress line. On a terminal it is redrawn in place: carriage return, then erase to the end of the
    line (ANSI EL) before the new text, so a shorter line leaves nothing behind ("ETA 23ss"), and the cursor
    stays at its end, so a ^C the terminal echoes lands after it, not over it ("^Cial 15/30"). Elsewhere
    (logs, pipes) one line each."""
    if _isatty(out):
        out.write("\r\x1b[K" + line)
    else:
        out.write(line + "\n")
    out.flush()

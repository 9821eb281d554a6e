"""What several command groups share: help texts, the study options, where a command's messages go."""

from __future__ import annotations

import sys

RUNTIME_HELP = (
    "what each network is timed in: torch (eager, the default) or onnxruntime (exported to ONNX once, "
    'timed in an InferenceSession with --threads intra-op threads; needs pip install "nasx[export]")'
)
DRIFT_HELP = (
    "time raw latencies: no calibration workload around each measurement (by default every latency is "
    "rescaled for the machine's speed at that moment; docs/latency.md)"
)


def study_options(q) -> None:
    """--storage and --study, as every command that reads a study takes them."""
    from nasx.store.db import DEFAULT_STORAGE

    q.add_argument("--storage", default=DEFAULT_STORAGE, help=f"SQLAlchemy URL (default {DEFAULT_STORAGE})")
    q.add_argument("--study", help="study name (default: the most recent nasx study in the storage)")


def message_stream(output):
    """Where a command says what it wrote: stderr when the output itself goes to stdout (-o /dev/stdout)."""
    from nasx.util.files import is_stdout

    return sys.stderr if output != "none" and is_stdout(output) else sys.stdout

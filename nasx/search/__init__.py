"""The search engine: budgets, settings, the trial pipeline (objective: sample, cost, reject or build,
time, score), screening, the opt-in sweep that queues a new study's first trials, opening and resuming a
study, the run loop with its progress line, and several workers on one storage.

May import: nasx.errors, nasx.util, core, nasx.space, nasx.store, nasx.measure, nasx.score."""

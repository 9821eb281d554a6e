"""The faces that read a finished or running study: its header (inspect), exports (export), the plotly
report (report), optuna-dashboard (dashboard) and retraining one trial (retrain). They read through
nasx.store.studies and never import the search engine.

May import: nasx.errors, nasx.util, core, nasx.space, nasx.store, nasx.measure, nasx.score."""

"""The database: nasx's own tables beside Optuna's (latency, score and calibration caches, the block
latency table, fitted models, Pareto snapshots), storage URLs and their errors (db), riding out a database
server that goes away (reconnect, and Optuna's storage through it: rdb), and reading a study back (studies:
status, front, records) for every face that shows one, without the search engine, and one-line readable
summaries of a trial's JSON for tables and optuna-dashboard (summary).

May import: nasx.errors, nasx.util, core."""

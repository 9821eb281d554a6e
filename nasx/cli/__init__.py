"""The `nasx` command line: the parser and the dispatch with its one-line errors (main), each command group's
options and command functions (cost_cmds: cost and zoo; search_cmds; study_cmds: pareto, trials, export,
report, dashboard; explore_cmds: explore and microbench; accuracy_cmds: validate-score, score, retrain), what
they share (common), and the conversion of arguments into each engine's settings (settings). Every nasx
error becomes one line on stderr and exit status 2.

May import: anything in nasx."""

"""The design-space explorer: populations sampled from a space and priced by the cost core (sampling),
a measured subset and latency predictors judged on held-out halves (predictors, run), its tables (schema),
text, figures and HTML (output); and per-block microbenchmarks (microbench).

May import: nasx.errors, nasx.util, core, nasx.space, nasx.store, nasx.measure, nasx.score."""

"""The second objective: training-free proxies of accuracy (proxies), short training on a data set
(train, data), the accuracy a shipped benchmark table holds (bench, the table in nas-bench-macro/), a score
through the storage's score cache (cached) and the rank correlation of proxies against trained accuracy
(validate). Training runs on a device nasx.measure resolves, and computing a score holds
nasx.measure's host lock (shared), so score sits above measure.

May import: nasx.errors, nasx.util, core, nasx.space, nasx.store, nasx.measure."""

"""The second objective: training-free proxies of accuracy (proxies), short training on a data set
(train, data) and the rank correlation of proxies against trained accuracy (validate).

May import: nasx.errors, nasx.util, core, nasx.space, nasx.store."""

"""Small pure helpers every layer may use: budget and size parsing (units), text tables and number
formatting (fmt), rank statistics (stats), Pareto dominance and hypervolume (pareto), atomic file writes
(files) and the HTML page shell (page).

May import: nasx.errors."""

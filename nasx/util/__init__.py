"""Small pure helpers every layer may use: budget and size parsing (units), text tables and number
formatting (fmt), rank statistics (stats), Pareto dominance and hypervolume (pareto), the HTML page shell.

May import: nasx.errors."""

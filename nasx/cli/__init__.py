"""The `nasx` command line: argparse (main) and the conversion of arguments into each engine's settings
(settings). Every nasx error becomes one line on stderr and exit status 2.

May import: anything in nasx."""

import sys

from nasx.cli import main

sys.exit(main())

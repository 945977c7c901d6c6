"""`python -m cdp`: the command line in cdp.cli."""

from cdp.cli import main

raise SystemExit(main())

"""`python -m pullwatch`."""

from pullwatch.cli import main

raise SystemExit(main())

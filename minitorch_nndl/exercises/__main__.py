"""``python3 -m minitorch_nndl.exercises``: list, start, check (see :mod:`minitorch_nndl.exercises.command`)."""

import sys

from .command import main

sys.exit(main())

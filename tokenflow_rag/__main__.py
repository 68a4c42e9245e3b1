"""``python -m tokenflow_rag``: the same as the ``tokenflow`` command."""

import sys

from tokenflow_rag.cli import main

sys.exit(main())

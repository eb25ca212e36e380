"""`python -m hatui.daemon node.yml`: the daemon without the CLI's imports (a smaller resident set)."""

import sys

from .main import run

if len(sys.argv) > 2:
    print("usage: python -m hatui.daemon [NODE_YML]  (without it: PATRONI_* / HATUI_* variables)", file=sys.stderr)
    sys.exit(2)
sys.exit(run(sys.argv[1] if len(sys.argv) == 2 else None))

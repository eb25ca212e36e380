"""`python -m hatui.daemon node.yml`: the daemon without the CLI's imports (a smaller resident set)."""

import sys

from .main import run

if len(sys.argv) != 2:
    print("usage: python -m hatui.daemon NODE_YML", file=sys.stderr)
    sys.exit(2)
sys.exit(run(sys.argv[1]))

"""`python -m hatui.cli`: the same as the `hatui` command."""

from .main import main

main()

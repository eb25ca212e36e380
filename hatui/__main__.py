"""`python -m hatui ...` is the `hatui` command."""

from .cli.main import main

main()

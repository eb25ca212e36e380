"""`python -m hatui ...` is the `hatui` command."""

from .cli import main

main()

"""`python -m reconciler` is the `homelab` command."""

from reconciler.cli.main import main

main()

"""`python -m canary`: the same CLI as the `canary` script."""

from canary.cli.main import main

main()

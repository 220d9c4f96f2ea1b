"""`python -m triage.cli`: the `triage` command."""

from triage.cli.commands import main

main()

"""The `triage` command (typer): `commands` (run, simulate, demo, chat, check), `store` (db,
audit, evidence, retention), and the modules behind the longer commands: `simulate` (the
`triage simulate FILE --json` contract), `demo` and `chat` (the product against the loopback
Telegram and Slack servers), `check` (the deployment checks). May import every part of the
product; nothing in the product imports it.
"""

from triage.cli.commands import app, main

__all__ = ["app", "main"]

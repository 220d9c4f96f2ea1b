"""Loopback stand-ins for the chat platforms: real protocols over HTTP on 127.0.0.1.

Test code, not part of the product (`triage run` never imports it): tests, the benchmarks,
`triage demo` and `triage chat` use it. `triage_sandbox.telegram` speaks the Telegram Bot API,
`triage_sandbox.slack` the Slack Web API and Socket Mode, `triage_sandbox.slack_signing` signs
requests as Slack does, and `triage_sandbox.outbox` holds the outbox's test doubles (an
in-memory sender, a manual clock). The package imports nothing itself, so
`python -m triage_sandbox.telegram` runs without a double import.
"""

"""Loopback stand-ins for the chat platforms: real protocols over HTTP on 127.0.0.1.

`triage.sandbox.telegram` speaks the Telegram Bot API. The package imports nothing itself, so
`python -m triage.sandbox.telegram` runs without a double import.
"""

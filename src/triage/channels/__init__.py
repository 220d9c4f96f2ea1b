"""Channel adapters: Telegram (clients) and Slack (sales and compliance).

They translate between a messenger and the engine or the outbox; they never decide.
"""

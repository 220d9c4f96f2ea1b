"""The store: SQLModel tables, the audit chain, migrations, and the engine on the store.

Modules: `models` (tables), `db` (engines, sessions, migrations), `audit` (hash chains),
`conversations` (`ConversationStore`: one client event, exactly once, one transaction).
"""

"""The store: SQLModel tables, the audit chain, migrations; it runs no use case.

Modules: `models` (tables), `db` (engines, sessions, migrations), `audit` (hash chains),
`evidence` and `retention` (exports and erasure), `metrics` (gauges). Imports nothing of the
flows, the outbox, the service layer, the channels or the app.
"""

"""The use cases: what a client, an officer or a scheduled job can make the product do.

Each use case owns one transaction: it loads what it needs from the store, lets the engine
(`triage.flows`) decide, and writes the decision, its evidence and its outbox rows together.

Modules: `client_events` (`ConversationStore.handle`: one client event, exactly once, in one
transaction; `seed_crm`), `officer_requests` (`Escalations.resolve`: an officer's request on an
escalated inquiry). May import the flows, the outbox, the store and the domain; never the
channels or the app.
"""

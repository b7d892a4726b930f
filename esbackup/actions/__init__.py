"""Actions: one module per operator request; each drives engine, catalog and nodes.

backup, restore, delete (and retention), sync, verify, rebuild, copy, tick. An
action receives the node-session factory (drivers/session.py) from its command
and imports only services, engine, catalog, drivers and domain (docs/DESIGN.md,
"Layers").
"""

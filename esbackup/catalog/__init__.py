"""Catalog: the only place with SQL; imports nothing above domain.

Schema and migrations, location and file checks, the SQLite and PostgreSQL
backends (docs/DESIGN.md, "Layers", "Catalog schema and migrations").
"""

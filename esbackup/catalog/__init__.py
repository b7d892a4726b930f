"""Catalog: the only place with SQL: schema and migrations, location and file checks, the SQLite
and PostgreSQL backends (docs/DESIGN.md, "Layers").
"""

"""Catalog: the only place with SQL; imports nothing above domain.

Modules (docs/DESIGN.md, "Layers", "Catalog schema and migrations"):
`schema` (migrations, the tables, version checks), `location` (where a
catalog is, file permission checks), `sqlite` and `postgresql` (the two
backends' connections), `helpers` (`where()`, `utcnow()`), `base` (the
connection protocol, transactions and row helpers the mixins share), one query
mixin per kind of record (`inventory`, `definitions`, `backups`, `runs`, `locks`,
`copying`), and `core`, whose `Catalog` composes them.
"""

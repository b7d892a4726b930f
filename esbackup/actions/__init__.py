"""Actions: one module per thing an operator asks for (backup, restore, delete, sync, verify,
rebuild, copy, tick); each drives the engine, the catalog and the nodes
(docs/DESIGN.md, "Layers").
"""

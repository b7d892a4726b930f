"""Actions: one module per thing an operator asks for (backup, restore, delete, sync, verify,
rebuild, copy, tick); each drives the engine, the catalog and the nodes through a session
factory it is given (docs/DESIGN.md, "Layers").
"""

"""Services: the catalog's records with their rules, for commands and actions.

Inventory, definitions, access to backups, health, planning, node checks; no
shell text, never imports actions or commands (docs/DESIGN.md, "Layers").
"""

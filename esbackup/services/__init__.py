"""Services: what commands read and change in the catalog with its rules (inventory, definitions,
access to backups, health, planning, node checks); no shell text (docs/DESIGN.md, "Layers").
"""

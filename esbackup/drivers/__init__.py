"""Drivers: the only place with shell text or argv; the node seam is drivers/session.py
(docs/DESIGN.md, "Layers", "One node seam").
"""

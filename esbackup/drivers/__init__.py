"""Drivers: the only place with shell text or argv; imports only domain and errors.

The node seam is drivers/session.py: every remote call of the layers above goes
through a NodeSession (docs/DESIGN.md, "Layers", "One node seam").
"""

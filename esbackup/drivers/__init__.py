"""Drivers: the only place with shell text or argv; every remote operation goes through a
NodeSession (docs/DESIGN.md, "Layers").
"""

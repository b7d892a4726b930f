"""Domain: records, names, schedules, balancing and roles; pure, imports only errors.

(docs/DESIGN.md, "Layers").
"""

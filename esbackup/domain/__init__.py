"""Domain: records, names, schedules, balancing and roles; pure, imports nothing of esbackup but
errors (docs/DESIGN.md, "Layers").
"""

"""Engine: the pieces actions are built from (locks, layout, manifests, presence, resume, recovery,
run log, bookmarks, retention, freeze, data paths); argv comes from drivers
(docs/DESIGN.md, "Layers").
"""

"""Engine: the pieces actions are built from; node calls only through sessions.

Locks, layout, manifests, presence, resume, recovery, run log, bookmarks,
retention, freeze, data paths. Argv comes from drivers; the engine never
imports services, actions or commands (docs/DESIGN.md, "Layers").
"""

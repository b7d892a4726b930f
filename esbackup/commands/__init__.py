"""Commands: parse the command line, make one call, render; no SQL, SSH or rules.

A command calls into actions or services and passes them the node-session
factory it holds (docs/DESIGN.md, "Layers", "Adding a command").
"""

"""Commands: parse the command line, make one call into actions or services, render the answer. No
SQL, no SSH, no rules (docs/DESIGN.md, "Layers").
"""

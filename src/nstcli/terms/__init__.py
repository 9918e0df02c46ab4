"""Loss terms: the parts the objective is the sum of (see base.py)."""

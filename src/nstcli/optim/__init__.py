"""Running an optimisation: the engine loop, the optimisers, L-BFGS, run records and callbacks."""

"""Design-space exploration: spaces, evaluation, result store, Pareto fronts."""

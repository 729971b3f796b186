"""COMBINER: compression with Bayesian implicit neural representations."""

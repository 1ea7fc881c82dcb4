"""Layer 1: argument checks, input preparation, pixel terms, reduction, distributed sums, the Module base and composition."""

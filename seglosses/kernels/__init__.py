"""Layer 2: the fused passes and the backends that run them."""

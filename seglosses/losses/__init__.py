"""Layer 3: one module per loss family (math, public function, Module)."""

"""Layer 7: delivering a compiled model where OAK users run it (NN Archive)."""

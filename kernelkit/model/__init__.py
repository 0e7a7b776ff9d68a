"""Layer 5, the model flow: blockers of a model, the patch passes, the patch folder."""

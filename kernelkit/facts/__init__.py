"""Layer 1: what is known about the targets, as data with sources: the MYRIAD knowledge base, targets, custom-layer facts."""

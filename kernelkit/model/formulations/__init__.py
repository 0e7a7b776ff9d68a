"""Formulations: an op MYRIAD cannot compile written as a graph of ops it can. `exact` holds the exact
compositions, `native_*` the fp16 approximations (their error measured in facts/data/native-fp16.json); each
registers its own with `registry.formulation`, and `registry.formulations()` finds them all."""

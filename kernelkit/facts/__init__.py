"""What is known about the targets, as data with its sources (in `data/`); it imports only core. `target`: a
MYRIAD target release as one object (data/targets.toml). `knowledge`: what each release's MYRIAD plugin accepts
(ops, limits, precision rules, the real plugin's verdicts on probe models) and what it does with custom layers
(data/custom-layers.toml). Also here: data/native-fp16.json (the native formulations' measured fp16 errors, read
by the model flow) and data/binding-verdicts-2021.4.json (the real plugin's verdicts on binding rules, made by
toolchain/probe_bindings.py and checked by the tests)."""

"""The real MYRIAD plugin (the compiler target's) as the judge of custom-layer bindings (`kernelkit plugin-check`).

For each layer to check, a small IR v10 wraps one layer of the binding's type (or a patched model is taken as
it is); every `<Source>` of the binding is replaced by a metadata-only ELF made from the `.cl` beside it
(check_elf.py); the real plugin compiles that with the binding; the blob it writes shows what the plugin
computed (stages.py). The verdict per layer:

    accepted   the blob holds a Custom stage for the layer
    rejected   the plugin refused the model while handling the layer (its message)
    skipped    the plugin never used the binding: it fell back to its own parser (and refused the type, or
               compiled it natively), or its IR reader cannot create an opset layer of the type (an extension
               layer, version="extension", it can: knowledge.EXTENSION_LAYER_VERSION)

For accepted layers the Custom stages are compared with what kernelkit's emulator would launch
(`emulator.plan_launch`): the alternative, work-group counts and sizes, every scalar value, every buffer's
place, order and dims. kernelkit's own reading (parser, validator, emulator) is recorded beside the plugin's,
so a disagreement shows either way.

Blobs compiled here are check artifacts (they embed ELFs with no code): they are written only into a
`--keep` folder, as `*.check.blob`, never where a deployable blob goes.

The jobs, in the order a check runs them:
  check_model     the check bindings (check ELFs), the one-layer check IR, the cases of a kernel or an IR layer
  run             the compile through the real plugin (kernelkit.runners.oracle), the kept check folder
  verdict         the verdict per layer read from the compile and the blob's Custom stages
  launch_compare  kernelkit's own reading of the binding and its launch plan against the blob's stages
  binding_file, patch_folder, kernel_folder   the drivers for the three kinds of `plugin-check` target

Nothing is imported here (a package __init__ stays free of its submodules).
"""

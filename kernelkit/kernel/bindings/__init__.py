"""Custom-layer bindings.

  model          the binding dataclasses (MYRIAD and GPU)
  myriad_read    MYRIAD XML -> the model, refusing what the plugin refuses
  myriad_select  which alternative the plugin applies to a layer, and what it makes of the layer's shapes
  myriad_write   the model -> canonical MYRIAD XML
  myriad_check   findings beyond what reading refuses
  gpu            Intel GPU (`SimpleGPU`) XML
  expr           the plugin's size-expression language
  clsource       kernel signatures from OpenCL source
  crosscheck     the binding against its kernel's signature
  validate       every check of a binding file, as `kernelkit validate` reports it
"""

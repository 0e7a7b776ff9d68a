"""Custom-layer bindings: MYRIAD (`myriad`) and Intel GPU (`gpu`) XML, the size-expression language (`expr`),
kernel signatures from OpenCL source (`clsource`) and the binding-vs-source cross-check (`crosscheck`)."""

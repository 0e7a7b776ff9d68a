"""The SHAVE emulator: run MYRIAD custom-layer bindings exactly as the plugin would, on PoCL.

  core    the binding interpreter (selection, work sizes, formats, scalars, stages, device checks)
  worker  the isolated PoCL worker process
  source  the kernel source as PoCL builds it (SHAVE prelude, half, Movidius copies)

The user's entry point is `kernelkit.emulate`; see docs/emulator.md.
"""

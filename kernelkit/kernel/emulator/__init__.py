"""The SHAVE emulator: run MYRIAD custom-layer bindings exactly as the plugin would, on PoCL.

  plan    the binding interpreter: selection, work sizes, formats, scalars, stages, static checks -> a LaunchPlan
  run     emulate(): lay the plan out in the worker's arena, run it, check the device would not misbehave
  cache   parsed files, transformed programs and whole plans kept between calls
  worker  the isolated PoCL worker process
  source  the kernel source as PoCL builds it (SHAVE prelude, half, Movidius copies)

The user's entry point is `kernelkit.kernel.emulator.run.emulate`; see docs/emulator.md.
"""

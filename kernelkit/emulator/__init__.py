"""The SHAVE emulator: run MYRIAD custom-layer bindings exactly as the plugin would, on PoCL.

    from kernelkit.emulator import emulate
    result = emulate("bindings.xml", "MyOp", [x], attrs={"alpha": 0.5})
    result.outputs[0]

See docs/emulator.md for what is emulated and how it differs from the device.
"""

from .cmx import CMX_BUDGET_BYTES
from .core import (MAX_WORK_GROUP_SIZE, DeviceCheckFailed, EmulationResult, LaunchPlan, NoBindingApplies, PlannedArg,
                   PlannedStage, emulate, plan_launch)
from .worker import shutdown

__all__ = ["emulate", "plan_launch", "LaunchPlan", "PlannedStage", "PlannedArg", "EmulationResult", "DeviceCheckFailed",
           "NoBindingApplies", "shutdown", "MAX_WORK_GROUP_SIZE",
           "CMX_BUDGET_BYTES"]

"""Binding XML for the emulator tests' small hand-written kernels (imported by the tests, not collected)."""


def one_in_one_out(layer_type: str, entry: str, source: str, *, src: str = "src", dst: str = "dst",
                   global_: str = "B*F*Y*X", local: str = "X") -> str:
    """A MYRIAD <CustomLayer> binding one input and one output tensor (BFYX), one work item per element."""
    return f"""<CustomLayer name="{layer_type}" type="MVCL" version="1">
    <Kernel entry="{entry}">
        <Source filename="{source}"/>
        <Parameters>
            <Tensor arg-name="{src}" type="input" port-index="0"/>
            <Tensor arg-name="{dst}" type="output" port-index="0"/>
        </Parameters>
        <WorkSizes dim="input,0" global="{global_}" local="{local}"/>
    </Kernel>
</CustomLayer>
"""


def emulate_unsplit(*args, **kwargs):
    """emulate() of a layer the plugin would split per sample (a 2-D [N, C] batch; on the device every copy
    overruns its slice): with checks off the emulator runs it once over the whole tensor, which checks the
    kernel's indexing at rank 2. Any other device-check error still fails."""
    from kernelkit.kernel.emulator.run import emulate

    result = emulate(*args, checks=False, **kwargs)
    other = [f.message for f in result.findings if f.severity == "error" and "splits this layer" not in f.message]
    assert not other, other
    return result

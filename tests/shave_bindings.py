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

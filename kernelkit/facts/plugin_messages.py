"""What the real MYRIAD plugin's error messages mean: the one table of the message forms kernelkit reads.

Each entry is a pattern, what a match means, and its source: a message the real 2021.4 plugin (run through
kernelkit's shim) printed, as kernelkit.myriad.compile.clean_plugin_message leaves it. Readers take the
named groups: `name` (layer name), `type` (layer type), and the entry's own groups listed in `means`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class PluginMessage:
    pattern: re.Pattern
    means: str
    printed: str            # the source: a message the real plugin printed, which the pattern reads
    seen_in: str            # where that message is recorded

    def search(self, text: str) -> re.Match | None:
        return self.pattern.search(text)


UNSUPPORTED_LAYER_TYPE = PluginMessage(
    re.compile(r'Failed to compile layer "(?P<name>[^"]+)": (?P<reason>unsupported layer type "(?P<type>[^"]+)")'),
    "the plugin has no stage for `type` (the layer's own type, or a layer its decomposition made); with a "
    "binding present it fell back to its own parser. `reason` is the refusal without the layer",
    'Failed to compile layer "Abs_723": unsupported layer type "Abs"',
    "data/plugin-verdicts-2021.4.json, Mod-1")

STAGE_TYPES_CHECK = PluginMessage(
    re.compile(r"Stage node (?P<name>.+?) \((?P<type>[^()]+)\) types check error"),
    "the stage exists but refuses the element type of an input or output (see INPUT_TYPE_EXPECTED)",
    "Stage node probe (Greater) types check error: input #0 has type S32, but one of [FP16] is expected",
    "data/plugin-verdicts-2021.4.json, Greater-1 (i32)")

INPUT_TYPE_EXPECTED = PluginMessage(
    re.compile(r"input #(?P<port>\d+) has type (?P<found>\w+), but one of \[(?P<accepts>[^\]]*)\] is expected"),
    "input `port` of the stage has effective type `found`; the stage accepts only `accepts` (comma-separated)",
    "Stage node probe (Greater) types check error: input #0 has type S32, but one of [FP16] is expected",
    "data/plugin-verdicts-2021.4.json, Greater-1 (i32)")

LAYER_OF_TYPE = PluginMessage(
    re.compile(r"^(?P<name>.+?) of type (?P<type>\w+):", re.M),
    "the plugin's prefix naming the layer its following refusal is about",
    "probe of type Pow: Stage node probe (Pow) types check error: input #0 has type S32, but one of [FP16] is "
    "expected",
    "data/plugin-verdicts-2021.4.json, Power-1 (i32)")

CANNOT_CREATE_LAYER = PluginMessage(
    re.compile(r"Cannot create (?P<type>\w+) layer (?P<name>.+?) id:\d+"),
    "the IR reader could not create the layer (the reason follows)",
    "Cannot create MyRelu layer relu0 id:1 from unsupported opset: extension",
    "research notes ir-and-myriad-support.md, extension layers")

READER_LACKS_OPSET = PluginMessage(
    re.compile(r"Cannot create (?P<type>\w+) layer .* from unsupported opset: (?P<opset>\S+)"),
    "the IR reader knows no `opset` with this `type` (too new an opset, or a type no opset has)",
    "Cannot create MyRelu layer relu0 id:1 from unsupported opset: extension",
    "research notes ir-and-myriad-support.md; luxonis/blobconverter#16 (Gather from opset7 on 2021.3)")

OPSET_LACKS_TYPE = PluginMessage(
    re.compile(r"Opset (?P<opset>\S+) doesn't contain the operation with type: (?P<type>\w+)"),
    "the IR reader's `opset` has no operation `type`",
    "Opset opset1 doesn't contain the operation with type: Hardmax",
    "data/binding-verdicts-2021.4.json, docs/plugin-check.md (Hardmax)")

FAILED_TO_COMPILE_LAYER = PluginMessage(
    re.compile(r'Failed to compile layer "(?P<name>[^"]+)"'),
    "the plugin's parser for the layer refused it (the reason follows)",
    "Failed to compile layer \"probe\": Current Interpolate supports 'nearest' and 'linear' modes only, actual cubic",
    "docs/myriad-plugin-verdicts.md, Interpolate (cubic)")

NGRAPH_VALIDATION = PluginMessage(
    re.compile(r"While validating node '(?:v\d+::)?(?P<type>\w+) [^']*' with friendly_name '(?P<name>[^']+)'"),
    "an nGraph pass of the plugin re-inferred the node's shapes and they do not hold (the check that failed "
    "comes first)",
    "Check 'input_product.get_length() % output_product.get_length() == 0' failed at core/src/op/reshape.cpp:334:\n"
    "While validating node 'v1::Reshape b (a[0]:f32{1,3,4,5}, Concat_23265[0]:i64{2}) -> (f32{?,?})' with "
    "friendly_name 'b':\nNon-'-1' output dimensions do not evenly divide the input dimensions",
    "ONNX node case test_flatten_axis3 patched for 2021.4 (docs/onnx-acceptance.md)")

# Which layer a refusal is about: the first of these that matches names it (most specific first).
NAMING_A_LAYER = (UNSUPPORTED_LAYER_TYPE, STAGE_TYPES_CHECK, LAYER_OF_TYPE, CANNOT_CREATE_LAYER,
                  FAILED_TO_COMPILE_LAYER, NGRAPH_VALIDATION)
# The IR reader cannot create the layer from its opset at all (only an extension layer reaches the plugin).
READER_CANNOT_CREATE = (READER_LACKS_OPSET, OPSET_LACKS_TYPE)

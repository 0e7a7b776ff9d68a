"""OpenVINO IR v10/v11: lossless read/write, graph API, `.bin` constants, ONNX import."""

from .load import apply_input_shapes, load_model, parse_input_shape, parse_input_shapes, write_temp_ir
from .model import Edge, IRModel, Layer, Port, format_shape, parse_dims_text

__all__ = ["load_model", "apply_input_shapes", "parse_input_shape", "parse_input_shapes", "write_temp_ir",
           "IRModel", "Layer", "Port", "Edge", "format_shape", "parse_dims_text"]

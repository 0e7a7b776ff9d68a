"""The model graphs. OpenVINO IR v10/v11: lossless read/write and the graph API (`model`), `.bin` element types
(`elements`), editing helpers for the patch passes (`graph`). ONNX: reading and walking a graph (`onnx_graph`),
conversion to IR (`onnx_import`), inputs frozen and control flow folded (`onnx_fold`), why an If/Loop cannot fold
(`onnx_explain`). The options applied while loading: `--input-value` (`freeze`), `--output` (`cut`),
`--input-shape` (`reshape`); `load` puts them together and is the top of the layer."""

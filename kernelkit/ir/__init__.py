"""OpenVINO IR v10/v11: lossless read/write (`model`), loading with ONNX import and freezing (`load`), graph editing
(`graph`), `.bin` constants (`elements`)."""

"""The offer model's training side: datasets, LightGBM fits, ONNX artifacts, uplift, evaluation."""

"""The offer model: the feature definition shared by training and serving, the ONNX
scorer, and the simulator that stands in for real shoppers until real data exists.

It depends on the kernel only for the shared vocabulary of events (`shared.events`);
the kernel never imports it. Used by campaign_engine, the `tenin` CLI and demo, and bench/.
"""

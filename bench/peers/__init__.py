"""Helpers of bench/runtime_vs_peers.py: model conversion to ONNX Runtime / LiteRT, timing children, report."""

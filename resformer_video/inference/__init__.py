"""Inference tools' logic: video prediction, model export and throughput benchmarks."""

"""Old import path of TimeSformer's reference model, which now lives beside the benchmark that
uses it: :mod:`resformer_video.benchmark.timesformer_reference`."""

from resformer_video.benchmark.timesformer_reference import TimeSformerReference, build_timesformer_reference

__all__ = ["TimeSformerReference", "build_timesformer_reference"]

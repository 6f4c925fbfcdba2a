"""The resolution study (``tools/study.py``): every variant of :data:`VARIANTS` trained with every
seed on the same data, each tested at every ``TEST.RESOLUTIONS`` size, summarised as the ResFormer
paper's Table 4 (``study.json``, ``study.md``, ``study.png``)."""

from resformer_video.study.pipeline import parse_seeds, run_study
from resformer_video.study.runs import StudyConfigMismatch
from resformer_video.study.variants import VARIANTS, parse_variants, variant_cfg

__all__ = ["StudyConfigMismatch", "VARIANTS", "parse_seeds", "parse_variants", "run_study", "variant_cfg"]

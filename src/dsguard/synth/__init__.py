"""The synthetic tenant generator: a realistic evidence bundle with labelled Direct Send abuse.

``generate(out, SynthConfig(...))`` writes a complete bundle (docs/bundle.md) plus
``truth.json``, the ground truth later stages are evaluated against. Modules: ``entities``
(the tenant), ``traffic`` (vectorised benign flows), ``campaigns`` (labelled abuse),
``writers`` (telemetry shapes), ``eml`` (raw messages), ``exchange`` (configuration, DNS,
exceptions), ``signins`` (Entra sign-ins) and ``generate`` (the orchestration and the truth).
"""

from dsguard.synth.config import SHAPES, SynthConfig, SynthSummary
from dsguard.synth.generate import generate

__all__ = ["SHAPES", "SynthConfig", "SynthSummary", "generate"]

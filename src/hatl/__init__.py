"""hatl: a reproducible pipeline for Hierarchical Adaptive Transfer Learning in sign language translation."""

__version__ = "0.1.0"

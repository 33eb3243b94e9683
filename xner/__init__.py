"""xner: cross-lingual named entity recognition for low-resource languages."""

__version__ = "0.1.0"

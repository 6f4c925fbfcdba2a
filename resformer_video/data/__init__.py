"""Data files shipped with the package (Kinetics-400 class names)."""

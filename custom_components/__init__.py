"""Custom components of this repository (the SAYMON integration)."""

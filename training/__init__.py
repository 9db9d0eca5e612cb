"""Reproducible training, export and evaluation of the models shipped in `models/`."""

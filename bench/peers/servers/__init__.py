"""The peer servers the benchmark compares MLServe with; each one serves models/mnist.

They import the preprocessing from the repo (`model_api.imaging`, `model_api.preprocess`)
so every server does the same work per request; see `model.py`.
"""

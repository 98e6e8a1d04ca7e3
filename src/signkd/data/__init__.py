"""Datasets: the synthetic corpus and its renderer, Phoenix-2014, CSL-Daily and your own videos, as manifests."""

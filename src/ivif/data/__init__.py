"""Datasets: paired folders and known layouts."""

from ivif.data.pairs import ImagePair, find_dataset, list_images, pair_folders

__all__ = ["ImagePair", "find_dataset", "list_images", "pair_folders"]

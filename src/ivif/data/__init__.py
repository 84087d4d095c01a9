"""Datasets: paired folders and known layouts."""

from ivif.data.datasets import Dataset, default_data_root, resolve_dataset
from ivif.data.pairs import ImagePair, find_dataset, list_images, pair_folders

__all__ = [
    "Dataset",
    "ImagePair",
    "default_data_root",
    "find_dataset",
    "list_images",
    "pair_folders",
    "resolve_dataset",
]

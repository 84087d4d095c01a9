"""Datasets: paired folders and known layouts."""

from ivif.data.datasets import Dataset, default_data_root, resolve_dataset
from ivif.data.pairs import ImagePair, find_dataset, list_images, pair_folders
from ivif.data.patches import PatchSampler, load_gray_pair, load_pairs

__all__ = [
    "Dataset",
    "ImagePair",
    "PatchSampler",
    "default_data_root",
    "find_dataset",
    "list_images",
    "load_gray_pair",
    "load_pairs",
    "pair_folders",
    "resolve_dataset",
]

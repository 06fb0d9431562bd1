"""Offline datasets and their partitioning among clients."""

from simulator.learning.data.datasets import Dataset, load_dataset, stratified_split
from simulator.learning.data.partition import label_histograms, partition

__all__ = ["Dataset", "label_histograms", "load_dataset", "partition", "stratified_split"]

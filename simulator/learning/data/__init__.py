"""Offline datasets and their partitioning among clients (labels alone without torch: load_labels)."""

from simulator.learning.data.datasets import Dataset, Labels, load_dataset, load_labels, stratified_split
from simulator.learning.data.partition import label_histograms, partition

__all__ = ["Dataset", "Labels", "label_histograms", "load_dataset", "load_labels", "partition", "stratified_split"]

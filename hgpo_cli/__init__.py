"""hgpo: train and evaluate LLM agents on long-horizon text tasks with HGPO and its baselines."""

__version__ = "0.1.0"

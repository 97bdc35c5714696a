"""Run tracking: a metrics.jsonl file in the run folder (always) and Weights & Biases (offline by default)."""

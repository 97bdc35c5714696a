"""Evaluation of a policy checkpoint over seeds, and the tables that report it."""

"""Text environments (one package each) behind the interface in `base.py`; `registry.py` finds them by name."""

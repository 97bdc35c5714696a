"""ALFWorld on the real alfworld/TextWorld PDDL engine: game loading (`games.py`), a game generator
(`generate.py`), the environment (`env.py`), a parse cache for the engine (`engine_cache.py`) and the
suite entry points (`suite.py`). Importing this package does not import alfworld or textworld."""

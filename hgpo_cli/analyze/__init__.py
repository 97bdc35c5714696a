"""The advantage lab: small partially observable environments written as data, policies with a K-step
observation memory, exact advantages by dynamic programming, and the measurements of `hgpo analyze`
(estimator bias, learning curves, group sizes of real runs).

Only numpy is imported at package level; torch (learn.py), matplotlib (plots.py) and rich (the command)
load inside the functions that need them.
"""

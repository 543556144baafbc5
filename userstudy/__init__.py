"""User-study analysis: the votes format, statistics, the paper's tables, the paper audit and
simulated (synthetic) panels. Independent of the generator; no torch import."""

"""Input encodings: the tcnn-exact multiresolution hash grid (PyTorch, Triton and tinycudann backends)."""

from .hashgrid import HASH_PRIMES, HashGridEncoding, LevelLayout, level_layouts

__all__ = ["HashGridEncoding", "LevelLayout", "level_layouts", "HASH_PRIMES"]

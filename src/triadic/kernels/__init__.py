"""Numba kernels: plain arrays in, plain arrays out. Wrappers in the layer above own validation.

Policy (STYLE.md §3): serial kernels use ``cache=True``; no ``fastmath`` anywhere; integer
arithmetic wherever encoder and decoder must agree.
"""

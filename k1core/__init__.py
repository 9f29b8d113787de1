"""NumPy core of k1: the K-1 self-learning LM, the baseline GPT, and their training harness."""
__version__ = "0.1.0"

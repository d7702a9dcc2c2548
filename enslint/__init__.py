"""enslint: find slow ensemble patterns in PyTorch nn.Module code."""

__version__ = "0.1.0"

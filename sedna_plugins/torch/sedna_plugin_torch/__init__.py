"""PyTorch backend for sedna-core: nn.Module training, safetensors weights."""

__version__ = "0.1.0"

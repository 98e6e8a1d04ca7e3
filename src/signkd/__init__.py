"""SignKD: continuous sign language recognition with multi-modal knowledge distillation."""

__version__ = "0.1.0"

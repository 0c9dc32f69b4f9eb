"""cxrbench-mixup: an example of a cxrbench generator living in its own package."""

from .generator import Mixup, MixupOptions

__all__ = ["Mixup", "MixupOptions"]

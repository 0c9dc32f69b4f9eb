"""cxrbench: does a generator's synthetic chest X-rays make downstream models better, and by how much?"""

from .kernels import pin_cpu_kernels

__version__ = "0.1.0"

pin_cpu_kernels()  # before anything loads torch: the same kernels, so the same numbers, on every machine

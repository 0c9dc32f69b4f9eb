"""cxrbench: does a generator's synthetic chest X-rays make downstream models better, and by how much?"""

__version__ = "0.1.0"

"""How close a synthetic set is to real images, beside what it does for downstream training: fidelity and diversity
(`metrics`: FID, KID, precision, recall, density, coverage) and memorisation (`memorisation`: nearest training
images). Both work on arrays of feature vectors (or flattened pixels); which extractor made them is the caller's."""

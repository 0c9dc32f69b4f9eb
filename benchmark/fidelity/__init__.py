"""How close a synthetic set is to real images, beside what it does for downstream training: fidelity and diversity
(`metrics`: FID, KID, precision, recall, density, coverage), memorisation (`memorisation`: nearest training
images) and patient re-identification (`reidentification`, with its `verifier`). The first two work on arrays of
feature vectors (or flattened pixels), which extractor made them is the caller's; re-identification on the images."""

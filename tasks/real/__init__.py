"""Real chest X-ray datasets from a user's local copy: the open suite and the paper suite."""

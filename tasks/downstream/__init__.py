"""The fixed downstream recipes: the models trained on real (+ synthetic) data, and their metrics."""

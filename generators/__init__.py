"""Generators: one module (or folder) per generator, its metadata next to its code."""

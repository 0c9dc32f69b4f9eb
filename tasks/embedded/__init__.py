"""The embedded suite: procedural phantom chest radiographs rendered by the project itself."""

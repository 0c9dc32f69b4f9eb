"""Tasks: one module per dataset family, plus the shared downstream models and metrics they use."""

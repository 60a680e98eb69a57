"""Small helpers shared by every layer: input checks and atomic file output."""

"""Models of the legal domain."""

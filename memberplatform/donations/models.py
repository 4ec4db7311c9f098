"""Models of the donations domain."""

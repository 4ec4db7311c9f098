"""Models of the kits domain."""

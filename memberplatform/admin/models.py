"""Models of the admin domain."""

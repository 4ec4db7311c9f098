"""Models of the courses domain."""

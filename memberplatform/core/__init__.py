"""Pieces shared by every domain: domain errors, masking, registries, CSV helpers."""

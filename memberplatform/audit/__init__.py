"""The audit trail: an append-only record of who changed or viewed what."""

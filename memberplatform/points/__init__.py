"""Points: the append-only ledger every domain spends and refunds through."""

"""The union staff console: figures, roster and accounts, audit trail, exports."""

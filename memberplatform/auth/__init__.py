"""Accounts and roles: login, activation of roster members, registration, passwords."""

"""Public home page, health check, the member dashboard and the language switch."""

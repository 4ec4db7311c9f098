"""WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app``."""

from memberplatform import create_app, warm_up

app = create_app()
warm_up(app)  # in gunicorn's master: every worker starts with templates compiled

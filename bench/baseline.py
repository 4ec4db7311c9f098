"""The stack's limit: a bare Flask + Jinja page, no database, same gunicorn settings."""

from pathlib import Path

from flask import Flask, render_template

app = Flask(__name__, template_folder=str(Path(__file__).parent / "templates"))


@app.get("/")
def index():
    return render_template("baseline.html", items=range(10), title="基线 baseline")

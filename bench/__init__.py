"""`make bench`: the platform measured over HTTP against gunicorn, as ratios to a bare stack."""

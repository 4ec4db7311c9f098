"""Gunicorn settings; every value can be overridden with GUNICORN_* style flags or env."""

import gc
import multiprocessing
import os
import sys

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = 30
graceful_timeout = 20
keepalive = 5
# A worker is replaced after this many requests (a guard against slow leaks; RSS has
# stayed flat in every bench). Each replacement starts with cold per-process caches
# (compiled SQL, cached figures): at rush rates 5,000 meant one every few seconds per
# worker and their slow first requests in the p99.
max_requests = int(os.environ.get("MAX_REQUESTS", "50000"))
max_requests_jitter = 5000
preload_app = True
accesslog = os.environ.get("ACCESS_LOG", "-") or None  # ACCESS_LOG= (empty) turns it off
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def pre_fork(server, worker):
    # The ~108,000 objects the preloaded app made live as long as the worker: frozen,
    # the worker's full garbage collections skip them (measured 50 ms each without)
    # and leave their memory pages shared with the master. GC_FREEZE=0 turns it off.
    if os.environ.get("GC_FREEZE", "1") == "1":
        gc.freeze()


def post_fork(server, worker):
    # Connections opened in the master before the fork (preload_app) must not be
    # shared by workers: drop them; each worker opens its own.
    wsgi = sys.modules.get("wsgi")
    if wsgi is not None and hasattr(wsgi, "app"):
        from memberplatform.extensions import db

        db.dispose(wsgi.app)

"""Load benchmark of the Deployment Actions API: `make bench` (`python -m bench.run`).

Seeds one workspace with 1 000, 100 000 and 1 000 000 actions, runs a bounded load against
`gunicorn wsgi:app` (2 workers) on SQLite and on PostgreSQL, and against a bare Flask app under
the same settings (the floor). Results land in bench/results/ (git-ignored). Not part of CI.
"""

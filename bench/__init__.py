"""Benchmarks of the Deployment Actions API: `make bench` (`python -m bench.run`), `make bench-quick`.

Every figure is a ratio to the lean reference (bench/lean.py): the same answers, from the same
database, through Flask with the raw driver and json. `bench.quick` measures it in one process on
SQLite (before every commit touching the read path); `bench.run` under gunicorn on SQLite and
PostgreSQL at 1 000, 100 000 and 1 000 000 actions. Results land in bench/results/ (git-ignored).
Not part of CI.
"""

"""Signed evidence that can be checked without the server: canonical JSON, digests, JWS, the verifier.

This package imports only the standard library and `cryptography`, never Flask, SQLAlchemy or
`audittrail`: the offline verifier (`audittrail-verify`) runs with no database and no
configuration, and the server imports the same functions, so the two can never disagree.
"""

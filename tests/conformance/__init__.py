"""The conformance suite: the original CloudFiles' own tests, run against cloudfiles_dask
(see runner.py; tests/test_conformance.py runs it)."""

"""Benchmarks of Wenzheng at city scale, and the plain-Mesa reference implementation they compare against.

``python -m bench`` (``make bench``) runs the suites and writes ``bench/results.json``; see
``bench/scale.py`` for what is measured and ``bench/reference.py`` for the reference model.
"""

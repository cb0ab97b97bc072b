"""Benchmarks and the labelled evaluation set.

- :mod:`privaudit.bench.generate`: seeded, labelled synthetic chat-app traffic;
- :mod:`privaudit.bench.evaluate`: precision/recall of the detector on it;
- :mod:`privaudit.bench.run` (``python -m privaudit.bench``): speed and memory figures.
"""

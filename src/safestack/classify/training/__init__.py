"""Rebuilding the embedded heads: public data → grouped split → heads → measured card.

Only ``safestack train`` and the tests use this package; serving never imports it.
"""

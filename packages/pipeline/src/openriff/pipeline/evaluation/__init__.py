"""Evaluation: how well generated stems fit their context.

* :mod:`.adherence`: rhythmic and harmonic fit of a stem to its song;
* :mod:`.synthetic`: the held-out synthetic-song evaluation behind ``openriff evaluate``.
"""

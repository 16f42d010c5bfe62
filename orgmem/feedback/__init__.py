"""Learning from use, at the records layer: response records, ratings, corrections, review policy.

``responses``: what the server answered (bounded, expiring). ``corrections``: proposed answers
and their review. ``conflicts``: the live documents that state another value. ``values``: which
words of an answer are its value. ``settings``: the ``ORGMEM_FEEDBACK_*`` limits.
"""

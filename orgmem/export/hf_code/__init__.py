"""The modeling code copied verbatim into every exported folder: torch + transformers only, never orgmem."""

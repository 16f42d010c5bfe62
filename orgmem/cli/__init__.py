"""The ``orgmem`` command line (entry point ``orgmem.cli.main:app``)."""

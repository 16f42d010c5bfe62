"""The HTTP face of orgmem: routes, authentication, errors, rate limits, the OpenAI wire format.

``/v1`` (``openai_routes``, ``openai_schema``), ``/api`` (``admin_routes``, ``admin_jobs``,
``accountability_routes``), ``/healthz``/``/readyz``/``/metrics`` (``ops_routes``); ``auth``,
``errors``, ``ratelimit``, ``bodylimit``, ``request_ids``, ``redact`` are what every route shares, and
``state.ServingState`` is what one server process holds. The runtime that decodes lives in
``orgmem.serving``; ``orgmem.app.create_app`` assembles this package and the console into one app.
Modules are imported explicitly: this package imports nothing on its own.
"""

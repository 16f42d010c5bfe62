"""Admin verbs, each written once: the CLI, the ``/api`` routes and the console call these.

``jobs`` (submit a sync or consolidation, cancel, retry, wait, run inline), ``chain`` (what the
nightly loop starts after a job), ``handlers`` (what each job kind does), ``schedules`` and
``schedule_store`` (when the nightly loop runs). Modules are imported explicitly: this package
imports nothing on its own.
"""

"""The Hearth node as a Home Assistant app (or a plain container): its start script.

``options`` checks the app's options (pure), ``discovery`` talks to the
Supervisor, ``start`` puts them together around ``mpc-backend init``/``serve``.
"""

"""Job records shared by every provider.

* :mod:`cloudbridge.jobstore.store` -- :class:`~cloudbridge.jobstore.store.JobStore`, the SQLite file
  (``CLOUDBRIDGE_HOME/cloudbridge.db``) that keeps every job of every provider, its events and the
  local backend's GPU allocations and queue.
* :mod:`cloudbridge.jobstore.schema` -- the store's tables, schema version and migrations.
* :mod:`cloudbridge.jobstore.events` -- :func:`~cloudbridge.jobstore.events.emit` fires the
  ``cloudbridge_job_event`` hook; the builtin observer in that module appends each event to the
  job's record.
* :mod:`cloudbridge.redaction` -- secret-looking values never reach a stored record.

The package is also callable as ``cb.jobs()`` (see ``cloudbridge/__init__.py``).
"""

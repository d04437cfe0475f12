"""cloudbridge-dirstore: an example cloudbridge provider.

Storage is a directory per bucket (``dir://bucket/key`` is ``<root>/buckets/bucket/key``) and jobs
run as local processes under a small detached runner. Nothing here is imported when cloudbridge
lists providers: :mod:`cloudbridge_dirstore.plugin` registers the provider by name only.
"""

__version__ = "0.1.0"

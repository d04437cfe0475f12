"""The builtin ``local`` provider: this machine's filesystem, GPUs and processes.

Registered through the same plugin hook as every third-party provider
(:mod:`cloudbridge.backends.local.plugin`). Nothing heavy is imported here.
"""

"""Old name of :mod:`cloudbridge.redaction`, the secret redaction of specs, the job store and plugins.

This module *is* :mod:`cloudbridge.redaction` (the same module object), so imports and monkeypatches of the old
name keep working.
"""

import sys

import cloudbridge.redaction as _moved

sys.modules[__name__] = _moved

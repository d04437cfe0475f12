"""Old name of :mod:`cloudbridge.gpus`, the GPU probing that the planner and the local backend share.

This module *is* :mod:`cloudbridge.gpus` (the same module object), so imports and monkeypatches of the old
name keep working.
"""

import sys

import cloudbridge.gpus as _moved

sys.modules[__name__] = _moved

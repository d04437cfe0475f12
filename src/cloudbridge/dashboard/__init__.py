"""``cloudbridge dashboard``: a local web app over every provider's jobs, endpoints, GPUs and spend.

Starlette (ASGI) with server-rendered Jinja2 pages, served by uvicorn on 127.0.0.1 only, guarded by a
random token that is part of the printed URL. Charts use uPlot, vendored under ``static/`` with its
licence: the dashboard loads nothing from the network. Install with ``pip install 'cloudbridge-ai[dashboard]'``.
Nothing here is imported by ``import cloudbridge`` or ``cloudbridge --help``.
"""

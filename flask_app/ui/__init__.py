"""The dashboard: server-rendered pages over the same service calls as the API and CLI, mounted at /ui.

`flask_app.ui.mount.blueprint()` returns the blueprint with every page registered; `init_zart` mounts it.
Assets are served from `static/` (no CDN, no build step): one stylesheet and one small script that adds
live updates, local times on hover and JSON checking, on top of pages that work without it.
"""

"""One folder per view (its name is the view's key in :data:`torchscope.dashboard.urls.ROUTES`); each ``page.py``
has ``layout(store, ...)`` and ``register(app, store)``."""

"""One module per page: ``PATH``, ``layout(store, ...)`` and ``register(app, store)``."""

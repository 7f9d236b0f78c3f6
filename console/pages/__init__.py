"""One module per console area; each exposes ``router`` (console.app.PAGE_MODULES)."""

"""The editors' side of the console, without HTTP: read and edit entries in the YAML files,
check an edit with ``kb check``'s validator, hear it, publish it, keep its history, and find
the caller phrasings the bot did not understand. ``console/pages/editor.py`` serves them."""

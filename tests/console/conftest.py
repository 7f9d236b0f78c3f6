"""Registers the console fixtures (defined with their helpers in ``console_support``)."""

from console_support import (  # noqa: F401 - pytest finds fixtures by their name here
    browser,
    browser_login_fixture,
    console_app,
    console_ledger,
    console_server,
    console_settings,
    login_fixture,
    make_user,
    page,
)

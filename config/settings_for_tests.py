"""The test suite's settings: production settings, served over plain HTTP on loopback.

DEBUG stays unset (off, as on a server). Only what a test server on
http://127.0.0.1 cannot have differs: the secret comes from here instead of
the environment, and there is no HTTPS to redirect to or to carry Secure
cookies. Each value is a default an environment variable still overrides,
and processes the tests start (a Celery worker, gunicorn) inherit them.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-never-deployed-" + "0123456789abcdef" * 3)
os.environ.setdefault("PRIVACY_ID_KEY", "tests-only-pseudonym-key-" + "fedcba9876543210" * 2)
for _name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
    os.environ.setdefault(_name, "false")

from config.settings import *  # noqa: E402,F403 - the settings under test, unchanged otherwise

# WhiteNoise warns at each start when collectstatic has not made the folder yet.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405

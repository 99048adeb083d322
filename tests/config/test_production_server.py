"""The README's production steps, run as written, then gunicorn with DEBUG unset (off).

On a fresh SQLite file (no service needed): database_create, migrate,
collectstatic, createsuperuser from the environment; then gunicorn behind
what a TLS proxy sends (X-Forwarded-Proto: https). The admin's CSS and
JavaScript load, the first admin logs in, plain HTTP is redirected to
HTTPS, and /health/ answers.
"""

from __future__ import annotations

import re
import secrets
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.config.test_settings import ROOT, clean_env

pytestmark = pytest.mark.slow

HTTPS = {"X-Forwarded-Proto": "https"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("production")
    password = secrets.token_urlsafe(16)
    env = clean_env(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50), PRIVACY_ID_KEY=secrets.token_urlsafe(40),
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=f"sqlite:///{folder}/db.sqlite3", STATIC_ROOT=str(folder / "static"),
        MODEL_ARTIFACT_DIR=str(folder / "models"), SECURE_PROXY_SSL_HEADER="true",
        DJANGO_SUPERUSER_USERNAME="first-admin", DJANGO_SUPERUSER_PASSWORD=password,
        DJANGO_SUPERUSER_EMAIL="ops@example.com")
    for k in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CELERY_TASK_ALWAYS_EAGER"):
        env.pop(k, None)
    for step in (["database_create"], ["migrate", "--noinput"],
                 ["collectstatic", "--noinput", "--verbosity", "0"],
                 ["createsuperuser", "--noinput"]):
        out = subprocess.run([sys.executable, "manage.py", *step], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, (step, out.stdout[-2000:], out.stderr[-2000:])
    port = _free_port()
    log = open(folder / "gunicorn.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "config.wsgi:application",
                             "--bind", f"127.0.0.1:{port}", "--workers", "1"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, (folder / "gunicorn.log").read_text()
        try:
            requests.get(f"{base}/health/", timeout=5)
            break
        except requests.RequestException:
            assert time.monotonic() < deadline, "gunicorn did not answer within 90 s"
            time.sleep(0.5)
    yield base, password
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def _cookies(response, jar: dict) -> dict:
    # Secure cookies: requests keeps them for https URLs only, and the proxy is simulated.
    for cookie in response.cookies:
        jar[cookie.name] = cookie.value
    return {**HTTPS, "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}


def test_plain_http_is_redirected_to_https_but_health_is_not(server):
    base, _ = server
    response = requests.get(f"{base}/admin/login/", allow_redirects=False, timeout=10)
    assert response.status_code == 301
    assert response.headers["Location"].startswith("https://")
    health = requests.get(f"{base}/health/", timeout=10)
    assert health.status_code == 200, health.text
    assert health.json()["status"] == "ok"


def test_the_admin_loads_its_css_and_javascript_and_the_first_admin_logs_in(server):
    base, password = server
    jar: dict = {}
    login = requests.get(f"{base}/admin/login/", headers=HTTPS, timeout=10)
    assert login.status_code == 200
    assert login.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "Secure" in login.headers["Set-Cookie"]
    stylesheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', login.text)
    assert "/static/admin/css/base.css" in stylesheets
    for path in [*stylesheets, "/static/admin/js/actions.js", "/static/plotly/plotly.min.js"]:
        asset = requests.get(f"{base}{path}", headers=HTTPS, timeout=10)
        assert asset.status_code == 200, path
        assert len(asset.content) > 1000 or path.endswith(".css"), path
        kind = "text/css" if path.endswith(".css") else "javascript"
        assert kind in asset.headers["Content-Type"], (path, asset.headers["Content-Type"])
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    headers = _cookies(login, jar)
    done = requests.post(f"{base}/admin/login/?next=/admin/", allow_redirects=False, timeout=10,
                         headers={**headers, "Referer": f"https://127.0.0.1{base[16:]}/admin/login/"},
                         data={"csrfmiddlewaretoken": token, "username": "first-admin",
                               "password": password, "next": "/admin/"})
    assert done.status_code == 302, done.text[:2000]
    assert done.headers["Location"] == "/admin/"
    home = requests.get(f"{base}/admin/", headers=_cookies(done, jar), timeout=10,
                        allow_redirects=False)
    assert home.status_code == 200
    assert "Site administration" in home.text and "first-admin" in home.text.lower()

"""A small Flask app that shows what the flask_app role sets up."""

import os

from flask import Flask, request, session
from werkzeug.middleware.proxy_fix import ProxyFix


def env_flag(name, default):
    return os.environ.get(name, default).strip().lower() in ("1", "true", "yes")


def secret_key():
    path = os.environ.get("SECRET_KEY_FILE")
    if path:
        with open(path, encoding="ascii") as handle:
            return handle.read().strip()
    return os.urandom(32)


app = Flask(__name__)
app.config.update(
    SECRET_KEY=secret_key(),
    SESSION_COOKIE_SECURE=env_flag("SESSION_COOKIE_SECURE", "true"),
    SESSION_COOKIE_HTTPONLY=env_flag("SESSION_COOKIE_HTTPONLY", "true"),
    SESSION_COOKIE_SAMESITE=os.environ.get("SESSION_COOKIE_SAMESITE", "Lax"),
    PREFERRED_URL_SCHEME=os.environ.get("PREFERRED_URL_SCHEME", "https"),
)
# nginx is the only proxy in front of the app, so ProxyFix trusts one hop of X-Forwarded-*.
app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)


@app.route("/")
def index():
    session["visits"] = session.get("visits", 0) + 1
    return (
        "Hello from Flask behind nginx\n"
        f"scheme: {request.scheme}\n"
        f"visits in this session: {session['visits']}\n",
        200,
        {"Content-Type": "text/plain; charset=utf-8"},
    )


@app.route("/healthz")
def health():
    return "ok\n", 200, {"Content-Type": "text/plain; charset=utf-8"}

"""WSGI entry point for production: `gunicorn bot.wsgi:app`."""

from bot.config import REQUIRED, load_settings
from bot.server import start_app
from bot.web import make_wsgi_app

bolt_app, services = start_app(load_settings(require=REQUIRED["serve"]))
app = make_wsgi_app(bolt_app)

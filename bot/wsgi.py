"""WSGI entry point for production: `gunicorn bot.wsgi:app`."""

from bot.config import REQUIRED, load_settings
from bot.server import start_app, stop_work_on_sigterm
from bot.web import make_wsgi_app

bolt_app, services = start_app(load_settings(require=REQUIRED["serve"]))
app = make_wsgi_app(bolt_app, ready=services.not_ready)
stop_work_on_sigterm(services)

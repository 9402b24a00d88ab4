"""WSGI entry point for another WSGI server (`gunicorn bot.wsgi:app`).

Production runs `python -m bot web` (Procfile): its server keeps slow clients off the threads
(SPEC 16). Under another server, that server, or a buffering proxy in front, must do so.
"""

from bot.config import REQUIRED, load_settings
from bot.server import start_app, stop_work_on_sigterm
from bot.web import make_wsgi_app

bolt_app, services = start_app(load_settings(require=REQUIRED["serve"]))
app = make_wsgi_app(bolt_app, ready=services.not_ready)
stop_work_on_sigterm(services)

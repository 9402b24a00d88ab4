"""A tiny Bolt app behind bot.web, for testing the HTTP layer and BotProcess without the bot."""

from __future__ import annotations

import logging
import os

from slack_bolt import App
from slack_sdk import WebClient

from bot.web import make_wsgi_app, serve


def build_bolt_app(signing_secret: str, api_url: str, token: str = "xoxb-test") -> App:
    """/addtolib acks with ``ack: <text>``; ``addtolib_confirm`` acks and responds."""
    app = App(
        signing_secret=signing_secret,
        client=WebClient(token=token, base_url=api_url),
    )

    @app.command("/addtolib")
    def on_command(ack, command):
        ack(f"ack: {command['text']}")

    @app.action("addtolib_confirm")
    def on_confirm(ack, body, respond):
        ack()
        respond(text=f"confirmed {body['actions'][0]['value']} by {body['user']['id']}")

    return app


def _from_env() -> App:
    return build_bolt_app(
        os.environ["SLACK_SIGNING_SECRET"],
        os.environ["SLACK_API_URL"],
        os.environ.get("SLACK_BOT_TOKEN", "xoxb-test"),
    )


def create_app():
    """WSGI app from the environment, for ``gunicorn 'tests.tiny_bolt_app:create_app()'``."""
    return make_wsgi_app(_from_env())


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    serve(create_app(), "127.0.0.1", int(os.environ.get("PORT", "3000")))

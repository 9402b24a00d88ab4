"""manifest.yml within Slack's limits, and bot scopes covering each Web API method bot/ calls."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from slack_sdk import WebClient

from bot.core import steps

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT / "bot"

# Slack's app manifest reference, https://docs.slack.dev/reference/app-manifest (its field
# tables give each string's maximum length); Slack refuses a manifest over any of them when the
# app is created. The first six are SPEC 16's; long_description's bounds are quoted in the
# reference's own example; the last two are from the same tables but were not re-checked here.
APP_NAME_MAX = 35
DESCRIPTION_MAX = 140
SHORTCUT_NAME_MAX = 24
CALLBACK_ID_MAX = 255
COMMAND_MAX = 32
USAGE_HINT_MAX = 1000
LONG_DESCRIPTION = (174, 4000)  # optional; when present, at least 174 and at most 4,000
SHORTCUT_DESCRIPTION_MAX = 150
BOT_DISPLAY_NAME_MAX = 80

# Web API method -> the bot scopes that allow it (any one of them; an empty set: no scope
# needed). From each method's page, https://docs.slack.dev/reference/methods/<method>
# ("Required scopes": bot token).
METHOD_SCOPES: dict[str, set[str]] = {
    "auth.test": set(),
    "chat.getPermalink": set(),
    "chat.postEphemeral": {"chat:write"},
    "chat.postMessage": {"chat:write"},
    "chat.update": {"chat:write"},
    # The notify and approval channels may be public or private (`check` looks at both).
    "conversations.info": {"channels:read", "groups:read"},
    "usergroups.users.list": {"usergroups:read"},
    "users.info": {"users:read"},  # the requester's time zone (SPEC 15)
    "views.open": set(),
    "views.publish": set(),
    "views.update": set(),
    # Completing a Workflow Builder step: "Bot tokens: No scope required" on both pages.
    "functions.completeSuccess": set(),
    "functions.completeError": set(),
}
# conversations.info needs every one of these, so that public and private channels both work.
NEEDS_ALL = {"conversations.info"}


def manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


def methods_called() -> set[str]:
    """Web API methods called in bot/: WebClient methods (chat_postMessage -> chat.postMessage)
    and ``api_call("...")``. The Slack stand-in plays Slack's side and is not scanned."""
    names = {
        name
        for name in dir(WebClient)
        if "_" in name and not name.startswith("_") and callable(getattr(WebClient, name))
    }
    names -= {"api_call"}
    call = re.compile(r"\.(" + "|".join(sorted(names, key=len, reverse=True)) + r")\(")
    raw_call = re.compile(r"api_call\(\s*[\"']([\w.]+)[\"']")
    found: set[str] = set()
    for path in BOT.rglob("*.py"):
        if "slack_standin" in path.parts:
            continue
        text = path.read_text()
        found |= {match.replace("_", ".") for match in call.findall(text)}
        found |= set(raw_call.findall(text))
    return found


def test_manifest_strings_are_within_slacks_limits() -> None:
    app = manifest()
    info = app["display_information"]
    assert 0 < len(info["name"]) <= APP_NAME_MAX
    assert 0 < len(info["description"]) <= DESCRIPTION_MAX
    if "long_description" in info:
        low, high = LONG_DESCRIPTION
        assert low <= len(info["long_description"]) <= high
    features = app["features"]
    assert 0 < len(features["bot_user"]["display_name"]) <= BOT_DISPLAY_NAME_MAX
    for shortcut in features["shortcuts"]:
        assert 0 < len(shortcut["name"]) <= SHORTCUT_NAME_MAX, shortcut["name"]
        assert 0 < len(shortcut["callback_id"]) <= CALLBACK_ID_MAX
        assert 0 < len(shortcut["description"]) <= SHORTCUT_DESCRIPTION_MAX
        assert shortcut["type"] in ("global", "message")
    for command in features["slash_commands"]:
        assert command["command"].startswith("/") and len(command["command"]) <= COMMAND_MAX
        assert len(command.get("usage_hint", "")) <= USAGE_HINT_MAX


def test_the_messages_tab_is_on_and_read_only() -> None:
    home = manifest()["features"]["app_home"]
    assert home["messages_tab_enabled"] is True
    assert home["messages_tab_read_only_enabled"] is True


def test_manifest_callback_ids_and_command_are_the_ones_the_bot_listens_for() -> None:
    source = "\n".join(path.read_text() for path in (BOT / "slack").rglob("*.py"))
    features = manifest()["features"]
    for shortcut in features["shortcuts"]:
        assert f'"{shortcut["callback_id"]}"' in source, shortcut["callback_id"]
    for command in features["slash_commands"]:
        assert f'"{command["command"]}"' in source, command["command"]


def test_every_web_api_method_the_code_calls_is_in_the_scope_table() -> None:
    called = methods_called()
    assert {"chat.postMessage", "usergroups.users.list", "auth.test"} <= called  # the scan works
    unmapped = called - METHOD_SCOPES.keys()
    assert not unmapped, f"add these methods and their scopes to METHOD_SCOPES: {unmapped}"


def test_the_bot_scopes_cover_every_method_the_code_calls() -> None:
    scopes = set(manifest()["oauth_config"]["scopes"]["bot"])
    for method in sorted(methods_called()):
        needed = METHOD_SCOPES[method]
        if not needed:
            continue
        if method in NEEDS_ALL:
            assert needed <= scopes, (method, needed - scopes)
        else:
            assert needed & scopes, (method, needed)
    # Slash commands, and posting in public channels the bot was not invited to (SPEC 6).
    assert {"commands", "chat:write.public"} <= scopes


def test_the_home_tab_is_on_and_app_home_opened_reaches_the_events_url() -> None:
    app = manifest()
    assert app["features"]["app_home"]["home_tab_enabled"] is True
    events = app["settings"]["event_subscriptions"]
    assert events["request_url"].endswith("/slack/events")
    assert "app_home_opened" in events["bot_events"]
    source = "\n".join(path.read_text() for path in (BOT / "slack").rglob("*.py"))
    # function_executed is matched by Bolt's app.function (the step's test checks that).
    for event in set(events["bot_events"]) - {"function_executed"}:
        assert f'"{event}"' in source, f"no listener for {event}"


def test_the_workflow_step_is_declared_as_the_code_reads_and_completes_it() -> None:
    """SPEC 13: the function's callback id, inputs and outputs are the ones bot.core.steps uses;
    an org-ready app whose functions run on this server (function_runtime: remote)."""
    app = manifest()
    functions = app["functions"]
    assert list(functions) == [steps.CALLBACK_ID]
    assert 0 < len(steps.CALLBACK_ID) <= CALLBACK_ID_MAX
    step = functions[steps.CALLBACK_ID]
    assert len(step["title"]) > 0 and len(step.get("description", "")) <= DESCRIPTION_MAX
    inputs = step["input_parameters"]
    assert tuple(inputs["properties"]) == steps.INPUTS
    assert set(inputs["required"]) == {"library", "asset_ids", "requester"}
    types = {name: spec["type"] for name, spec in inputs["properties"].items()}
    assert types == {
        "library": "string",
        "asset_ids": "string",
        "requester": "slack#/types/user_id",
        "channel": "slack#/types/channel_id",
    }
    outputs = step["output_parameters"]
    assert tuple(outputs["properties"]) == steps.OUTPUTS
    assert set(outputs["required"]) == set(steps.OUTPUTS)
    assert outputs["properties"]["operation_id"]["type"] == "string"
    assert {outputs["properties"][n]["type"] for n in steps.OUTPUTS[1:]} == {"integer"}
    settings = app["settings"]
    assert settings["function_runtime"] == "remote"
    assert settings["org_deploy_enabled"] is True
    assert "function_executed" in settings["event_subscriptions"]["bot_events"]
    assert settings["event_subscriptions"]["request_url"].endswith("/slack/events")
    source = "\n".join(path.read_text() for path in (BOT / "slack").rglob("*.py"))
    assert "app.function(STEP)" in source

"""Block Kit checks of the stand-in: the limits Slack enforces, and ``invalid_blocks``."""

from __future__ import annotations

from typing import Any

__all__ = ["BlocksError", "validate_blocks"]

#: Slack's Block Kit limits that a careless message would break.
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_BUTTON_VALUE = 2000
MAX_ACTION_ID = 255
MAX_BLOCK_ID = 255
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_BUTTON_TEXT = 75
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25


class BlocksError(ValueError):
    """Blocks Slack would refuse (``invalid_blocks``)."""


def validate_blocks(blocks: Any, limit: int = MAX_BLOCKS) -> None:
    """Raise BlocksError when Slack would answer ``invalid_blocks``.

    Lengths are those of the text as sent: an escaped `&lt;` counts four characters.
    `limit`: 50 blocks in a message; a Home tab view holds 100 (views.py).
    """
    if blocks is None:
        return
    if not isinstance(blocks, list):
        raise BlocksError("blocks must be a list")
    if len(blocks) > limit:
        raise BlocksError(f"{len(blocks)} blocks, Slack allows {limit}")
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or not block.get("type"):
            raise BlocksError(f"block {i} has no type")
        kind, where = block["type"], f"block {i}"
        if len(str(block.get("block_id", ""))) > MAX_BLOCK_ID:
            raise BlocksError(f"{where}: block_id longer than {MAX_BLOCK_ID}")
        if kind == "section":
            if block.get("text") is not None:
                _text_object(block["text"], f"{where} text", MAX_SECTION_TEXT)
            fields = block.get("fields")
            if fields is not None:
                if not isinstance(fields, list) or not 0 < len(fields) <= MAX_FIELDS:
                    raise BlocksError(f"{where}: fields must be 1 to {MAX_FIELDS} text objects")
                for j, field_ in enumerate(fields):
                    _text_object(field_, f"{where} field {j}", MAX_FIELD_TEXT)
            if block.get("text") is None and not fields:
                raise BlocksError(f"{where}: section without text or fields")
            accessory = block.get("accessory")
            if isinstance(accessory, dict) and accessory.get("type") == "button":
                _button(accessory, f"{where} accessory")
        elif kind == "header":
            _text_object(block.get("text"), f"{where} header", MAX_HEADER_TEXT, plain=True)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 0 < len(elements) <= MAX_CONTEXT_ELEMENTS:
                raise BlocksError(f"{where}: context needs 1 to {MAX_CONTEXT_ELEMENTS} elements")
            for j, element in enumerate(elements):
                if isinstance(element, dict) and element.get("type") != "image":
                    _text_object(element, f"{where} element {j}", MAX_SECTION_TEXT)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 0 < len(elements) <= MAX_ACTIONS_ELEMENTS:
                raise BlocksError(f"{where}: actions need 1 to {MAX_ACTIONS_ELEMENTS} elements")
        for element in block.get("elements") or ():
            if not isinstance(element, dict):
                continue
            if element.get("type") == "button":
                _button(element, where)
            if len(str(element.get("value", ""))) > MAX_BUTTON_VALUE:
                raise BlocksError(f"block {i}: element value too long")
            if len(str(element.get("action_id", ""))) > MAX_ACTION_ID:
                raise BlocksError(f"block {i}: action_id too long")


def _text_object(obj: Any, where: str, limit: int, plain: bool = False) -> None:
    kinds = ("plain_text",) if plain else ("plain_text", "mrkdwn")
    if not isinstance(obj, dict) or obj.get("type") not in kinds:
        raise BlocksError(f"{where}: must be a {' or '.join(kinds)} text object")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        raise BlocksError(f"{where}: empty text object")
    if len(text) > limit:
        raise BlocksError(f"{where}: text of {len(text)} chars, Slack allows {limit}")


def _button(button: dict, where: str) -> None:
    _text_object(button.get("text"), f"{where} button", MAX_BUTTON_TEXT, plain=True)
    if len(str(button.get("value", ""))) > MAX_BUTTON_VALUE:
        raise BlocksError(f"{where}: button value too long")
    if len(str(button.get("action_id", ""))) > MAX_ACTION_ID:
        raise BlocksError(f"{where}: action_id too long")

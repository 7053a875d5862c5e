"""Failures appear in plain words in the widget and re-raise under the test switch."""

from __future__ import annotations

import pytest

from nav_crm_ops.exceptions import ConfigError, SyncCancelled
from nav_crm_ops.widgets.errors import (
    ActionButton,
    ErrorArea,
    callbacks_raise,
    guarded,
    plain_message,
    raise_callback_errors,
)


def failing_button(error: Exception) -> tuple[ActionButton, ErrorArea]:
    area = ErrorArea()
    button = ActionButton(description="Go")

    def fail(_: object) -> None:
        raise error

    button.on_click(guarded(area, "load the mappings")(fail))
    return button, area


def test_click_shows_message_and_reraises_under_switch() -> None:
    button, area = failing_button(ConfigError("mapping file x.yaml: key 'direction' is missing"))
    with pytest.raises(ConfigError, match="direction"):
        button.click()
    assert area.kind == "error"
    assert area.message == "Could not load the mappings: mapping file x.yaml: key 'direction' " \
                           "is missing"
    assert "Could not load the mappings" in area.widget.value


def test_click_without_switch_shows_message_and_does_not_raise() -> None:
    button, area = failing_button(ConfigError("bad key"))
    with raise_callback_errors(False):
        assert not callbacks_raise()
        button.click()
    assert area.message == "Could not load the mappings: bad key"


def test_unexpected_errors_are_called_bugs() -> None:
    text = plain_message(KeyError("nav_id"), "couple the records")
    assert text.startswith("Could not couple the records: unexpected KeyError")
    assert "bug in nav-crm-ops" in text


def test_cancellation_is_not_an_error() -> None:
    area = ErrorArea()
    button = ActionButton(description="Go")

    def cancelled(_: object) -> None:
        raise SyncCancelled("cancelled during the CUSTOMER preview")

    button.on_click(guarded(area, "preview CUSTOMER")(cancelled))
    button.click()
    assert area.kind == "cancelled"
    assert area.message.startswith("Cancelled preview CUSTOMER")

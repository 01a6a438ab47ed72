"""A smith's own Slack app on its Deployments tab (issue 17): the button (or where to enable it), the dialog
that creates the app, and a removal that may delete the app. Its name on the row, renamed in place, is the
tab's (``own_app_name`` in app/pages/smith_tabs/deployments.py), as for any smith's own app."""

from __future__ import annotations

import reflex as rx

from app.components.layout import form_error
from app.state.slack_apps import APP_NAME_MAX, DEFAULT_GREETING, GREETING_MAX, PROMPT_MAX, PROMPTS_MAX
from app.state.slack_apps import SlackAppState as A

GRAY = rx.color("gray", 11)


def app_offer(offer: rx.Var) -> rx.Component:
    """Under a connected channel's link button: "Create a dedicated … app" once its app factory is set up,
    or where to set it up."""
    return rx.match(
        offer["factory"],
        ("ready", rx.vstack(
            rx.hstack(
                rx.button(rx.icon("sparkles", size=14), "Create a dedicated ", offer["name"], " app",
                          on_click=A.open_dialog, variant="soft", id=offer["app_button_id"]),
                rx.text("its own name in ", offer["name"], ", and the assistant pane", size="2", color=GRAY),
                align="center",
            ),
            rx.cond(offer["factory_error"] != "",
                    rx.text("Its configuration token could not be renewed: see ",
                            rx.link("Settings → Integrations", href="/settings/integrations"), ".",
                            size="1", color=rx.color("amber", 11)),
                    rx.fragment()),
            spacing="1",
        )),
        ("missing", rx.text("To give this smith a ", offer["name"], " app of its own, add the app configuration "
                            "refresh token in ",
                            rx.link("Settings → Integrations → ", offer["name"], href="/settings/integrations"), ".",
                            size="2", color=GRAY, id=offer["factory_hint_id"])),
        rx.fragment(),
    )


def _label(text: str, html_for: str) -> rx.Component:
    return rx.el.label(rx.text(text, size="2", weight="medium"), html_for=html_for)


def _assistant_fields() -> rx.Component:
    return rx.vstack(
        _label("Greeting", "slack-app-greeting"),
        rx.input(name="greeting", id="slack-app-greeting", default_value=DEFAULT_GREETING, max_length=GREETING_MAX,
                 width="100%"),
        rx.text("The first thing the smith says when someone opens the assistant pane.", size="1", color=GRAY),
        rx.text(f"Suggested prompts (up to {PROMPTS_MAX})", size="2", weight="medium", padding_top="6px"),
        *[rx.input(name=f"prompt_{number}", id=f"slack-app-prompt-{number}", max_length=PROMPT_MAX, width="100%",
                   placeholder=f"Prompt {number} (optional)", aria_label=f"Suggested prompt {number}")
          for number in range(1, PROMPTS_MAX + 1)],
        rx.text(f"Buttons under the greeting; each sends its text to the smith ({PROMPT_MAX} characters at most).",
                size="1", color=GRAY),
        spacing="1", width="100%",
    )


def slack_app_dialog() -> rx.Component:
    """The dialog "Create a dedicated Slack app" opens: the server creates the app, the tab shows its link."""
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("A dedicated Slack app for this smith"),
            rx.dialog.description(
                "The server creates a new Slack app with this name and gives you a link that installs it. "
                "People then talk to the smith under its own name.", size="2"),
            rx.form(
                rx.vstack(
                    rx.hstack(_label("App name", "slack-app-name"), rx.spacer(),
                              rx.text(A.app_name.length(), f" / {APP_NAME_MAX}", size="1", color=GRAY,
                                      id="slack-app-name-count"),
                              align="center", width="100%"),
                    rx.input(name="display_name", id="slack-app-name", value=A.app_name, on_change=A.set_app_name,
                             max_length=APP_NAME_MAX, placeholder="Dana's assistant", width="100%"),
                    rx.el.label(rx.hstack(
                        rx.switch(checked=A.assistant, on_change=A.set_assistant,
                                  aria_label="Show in Slack's assistant pane"),
                        rx.text("Show in Slack's assistant pane", size="2"),
                        align="center", spacing="2"), padding_top="8px"),
                    rx.cond(A.assistant, _assistant_fields(), rx.fragment()),
                    form_error(A.form_error),
                    rx.hstack(
                        rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray", type="button")),
                        rx.button("Create app", type="submit", loading=A.creating, id="slack-app-create"),
                        justify="end", width="100%", spacing="3", padding_top="8px",
                    ),
                    spacing="2", width="100%", padding_top="12px",
                ),
                on_submit=A.create_app,
                reset_on_submit=False,
            ),
            max_width="520px",
        ),
        open=A.dialog_open,
        on_open_change=A.set_dialog_open,
    )


def remove_with_app(row: rx.Var) -> rx.Component:
    """Removing a dedicated app's deployment asks first, and offers to delete the Slack app as well."""
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(
            rx.button(rx.icon("trash-2", size=14), "Remove", size="1", variant="soft", color_scheme="red",
                      on_click=A.ask_remove),
        ),
        rx.alert_dialog.content(
            rx.alert_dialog.title("Remove this deployment?"),
            rx.alert_dialog.description("The smith stops answering on this surface.", size="2"),
            rx.vstack(
                rx.checkbox("Also delete the Slack app", checked=A.delete_app, on_change=A.set_delete_app,
                            id="delete-slack-app"),
                rx.text("Deleting it removes it from every workspace that installed it. Untick to keep the app "
                        "in Slack (api.slack.com/apps), for example to manage it yourself.", size="1", color=GRAY),
                spacing="1", padding_top="12px",
            ),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(rx.button("Delete", color_scheme="red",
                                                 on_click=A.remove_with_app(row["id"]))),
                spacing="3", justify="end", padding_top="16px",
            ),
            max_width="460px",
        ),
    )

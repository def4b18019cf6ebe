"""Keys that screens with input fields share.

Tab moves between fields as a *priority* binding, so the focus moves while the app takes the
key from its queue. Without it, Tab travels to the focused field first and comes back up to the
screen as a message; a burst typed faster than that (a password manager's auto-type:
`user`, Tab, token, Enter) is already handed to the old field by then, and the token would
land, visible, in the Docker ID field.
"""

from __future__ import annotations

from textual.binding import Binding

FIELD_NAVIGATION: tuple[Binding, ...] = (
    Binding("tab", "app.focus_next", "Next field", show=False, priority=True),
    Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True),
)

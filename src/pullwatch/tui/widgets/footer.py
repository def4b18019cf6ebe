"""The key footer: Textual's own, rebuilt only when the keys it shows change.

Textual's `Footer` removes and mounts all its key widgets (each styled anew) whenever the screen
says its bindings were updated: on every focus change, on the app gaining or losing focus, on
any reactive declared with `bindings=True`. Most of those change nothing it shows. At start-up
the dashboard's footer was rebuilt seven times while the first values were on their way from
the history (benchmarks/startup.py); this one is rebuilt when a key, its description, whether
it is enabled or its tooltip changes.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer

_Shown = tuple[object, ...]


class KeyFooter(Footer):
    """`Footer`, rebuilt only when what it shows changes."""

    _shown: _Shown | None = None

    def _what_it_shows(self, screen: Screen[object]) -> _Shown:
        keys = tuple(
            (
                binding.key,
                binding.key_display,
                binding.description,
                binding.action,
                binding.show,
                binding.group,
                enabled,
                tooltip,
            )
            for (_, binding, enabled, tooltip) in screen.active_bindings.values()
        )
        return (keys, self.compact, self.show_command_palette)

    def bindings_changed(self, screen: Screen[object]) -> None:
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            shown = self._what_it_shows(screen)
            if shown == self._shown:
                return
            self._shown = shown
        super().bindings_changed(screen)

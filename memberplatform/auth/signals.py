"""Account events other domains subscribe to (e.g. points grants the activation bonus)."""

from blinker import Namespace

_signals = Namespace()

#: sent with ``user=`` inside the activation transaction
user_activated = _signals.signal("user-activated")

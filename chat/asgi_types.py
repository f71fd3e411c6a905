"""Loose types for the ASGI callables written by hand here (health checks, the origin check).

asgiref.typing's TypedDicts are stricter than the dicts Daphne and channels pass around.
"""

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
# Mapping, as Django's ASGIHandler declares it: a sender may be handed any message.
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

"""WebSocket routing: every path gets an answer, never a server error."""

import pytest
from channels.testing import HttpCommunicator, WebsocketCommunicator

from chat.consumers import CLOSE_INVALID_ROOM, CLOSE_UNKNOWN_PATH
from mysite.asgi import application

HEADERS = [(b"origin", b"http://testserver"), (b"host", b"testserver")]


@pytest.mark.parametrize(
    ("path", "code", "explanation", "close_code"),
    [
        ("/ws/elsewhere/", "unknown_path", "/ws/chat/", CLOSE_UNKNOWN_PATH),
        ("/ws/chat//", "invalid_room", "empty", CLOSE_INVALID_ROOM),
    ],
    ids=["unknown path", "empty room name"],
)
async def test_unusable_socket_paths_are_explained_then_closed(path, code, explanation, close_code):
    communicator = WebsocketCommunicator(application, path, headers=HEADERS)
    connected, _ = await communicator.connect()
    assert connected, "accepted so that the client can read the reason"
    frame = await communicator.receive_json_from()
    assert frame["code"] == code and explanation in frame["error"]
    assert await communicator.receive_output() == {"type": "websocket.close", "code": close_code}
    await communicator.disconnect()


async def test_daphne_serves_no_pages_in_production():
    communicator = HttpCommunicator(application, "GET", "/chat/")
    response = await communicator.get_response()
    assert response["status"] == 404
    assert b"WebSockets" in response["body"]


async def test_runserver_in_development_serves_the_pages_too(settings):
    settings.DEBUG = True
    communicator = HttpCommunicator(application, "GET", "/chat/", headers=[(b"host", b"testserver")])
    response = await communicator.get_response()
    assert response["status"] == 200
    assert b'id="room-name-input"' in response["body"]

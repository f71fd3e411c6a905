"""WebSocket routing: every path gets an answer, never a server error."""

from channels.testing import HttpCommunicator, WebsocketCommunicator

from chat.consumers import CLOSE_INVALID_ROOM, CLOSE_UNKNOWN_PATH
from mysite.asgi import application

HEADERS = [(b"origin", b"http://testserver"), (b"host", b"testserver")]


async def test_an_unknown_socket_path_is_explained_and_closed():
    communicator = WebsocketCommunicator(application, "/ws/elsewhere/", headers=HEADERS)
    connected, _ = await communicator.connect()
    assert connected
    frame = await communicator.receive_json_from()
    assert frame["code"] == "unknown_path" and "/ws/chat/" in frame["error"]
    assert await communicator.receive_output() == {"type": "websocket.close", "code": CLOSE_UNKNOWN_PATH}
    await communicator.disconnect()


async def test_an_empty_room_name_is_refused_with_a_reason():
    communicator = WebsocketCommunicator(application, "/ws/chat//", headers=HEADERS)
    connected, _ = await communicator.connect()
    assert connected
    frame = await communicator.receive_json_from()
    assert frame["code"] == "invalid_room" and "empty" in frame["error"]
    assert await communicator.receive_output() == {"type": "websocket.close", "code": CLOSE_INVALID_ROOM}
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

"""The Label Studio fixture gives a working, loopback-only server."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from label_studio_server import LOOPBACK, LabelStudioServer, listening_addresses

pytestmark = pytest.mark.label_studio


def test_sdk_can_authenticate(label_studio: LabelStudioServer) -> None:
    """The SDK's own client accepts the fixture's URL and token."""
    from label_studio_sdk import LabelStudio

    client = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
    me = client.users.whoami()
    assert me.id is not None
    if not label_studio.reused:
        assert me.email == label_studio.username


def test_server_rejects_a_wrong_token(label_studio: LabelStudioServer) -> None:
    """Auth is really on, so the test above proves the token works."""
    from label_studio_sdk import LabelStudio
    from label_studio_sdk.core.api_error import ApiError

    client = LabelStudio(base_url=label_studio.url, api_key="0" * 40)
    with pytest.raises(ApiError) as excinfo:
        client.users.whoami()
    assert excinfo.value.status_code == 401


def test_server_listens_on_loopback_only(label_studio: LabelStudioServer) -> None:
    """Label Studio defaults to 0.0.0.0; ours must not be reachable from outside."""
    port = urlsplit(label_studio.url).port
    assert port is not None
    on_port = listening_addresses(port=port)
    assert on_port == {(LOOPBACK, port)}, on_port
    if label_studio.process is not None:
        # Every socket any of its processes listens on, not only the HTTP port.
        group = listening_addresses(process_group=label_studio.process.pid)
        assert group, "found no listening sockets for the server's process group"
        assert {addr for addr, _ in group} == {LOOPBACK}, group

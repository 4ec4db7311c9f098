"""Stored XSS in the legal thread: a script in the question, the enterprise name, the
lawyer's answer and an internal note shows as text on every page that displays it."""

from __future__ import annotations

import pytest
from markupsafe import escape

from memberplatform.extensions import db
from memberplatform.legal import services
from tests.legal.conftest import req, submit, user

PAYLOADS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


def login(app, u):
    client = app.test_client()
    assert (
        client.post(
            "/auth/login", data={"phone": u.phone, "password": "Correct-Horse-42"}
        ).status_code
        == 303
    )
    return client


@pytest.mark.parametrize("payload", PAYLOADS)
def test_thread_text_is_escaped_everywhere(app, world, payload):
    request_id = submit(app, world, question=f"问题{payload}", enterprise_name=f"企业{payload}")
    with app.app_context():
        legal_request = req(request_id)
        services.claim(user(world.lawyer), legal_request)
        services.add_note(user(world.lawyer), legal_request, f"备注{payload}")
        services.answer(user(world.lawyer), legal_request, f"答复{payload}")
        db.session.commit()
    pages = {
        "member thread": login(app, world.member).get(f"/legal/requests/{request_id}"),
        "lawyer thread": login(app, world.lawyer).get(f"/legal/requests/{request_id}"),
        "admin thread": login(app, world.admin).get(f"/legal/requests/{request_id}"),
        "my requests": login(app, world.member).get("/legal/requests"),
        "lawyer desk": login(app, world.lawyer).get("/lawyer"),
        "notifications": login(app, world.member).get("/notifications"),
    }
    for where, response in pages.items():
        assert response.status_code == 200, where
        page = response.get_data(as_text=True)
        assert payload not in page, f"raw payload on {where}"
    member_page = pages["member thread"].get_data(as_text=True)
    assert str(escape(f"问题{payload}")) in member_page
    assert str(escape(f"答复{payload}")) in member_page
    assert str(escape(f"备注{payload}")) not in member_page  # internal notes stay internal
    assert str(escape(f"备注{payload}")) in pages["lawyer thread"].get_data(as_text=True)

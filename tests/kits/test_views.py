"""Kit pages over HTTP: normal and htmx requests, bad input, access rules, export."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from memberplatform.core import cache
from memberplatform.extensions import db
from memberplatform.kits import services
from memberplatform.kits.models import KitClaim, KitType, PickupPoint
from tests.conftest import HX, PASSWORD
from tests.kits.conftest import make_kit, stock
from tests.querycount import count_queries, round_trips


@pytest.fixture
def member(make_user):
    return make_user(name="张三明", phone="13812345678")


def login(app, user):
    client = app.test_client()
    response = client.post("/auth/login", data={"phone": user.phone, "password": PASSWORD})
    assert response.status_code == 303
    return client


def claim_form(client, kit_id):
    page = client.get(f"/kits/{kit_id}").get_data(as_text=True)
    key = re.search(r'name="request_key" type="hidden" value="([^"]+)"', page)
    return key.group(1) if key else ""


def test_anyone_sees_the_kits_with_stock_left(client, setup):
    page = client.get("/kits").get_data(as_text=True)
    assert "健康防护包" in page and "医用口罩" in page
    assert "剩余 5 份" in page and "剩余 3 份" in page
    assert "登录后即可申领" in page


def test_member_claims_and_gets_a_code_and_qr(app, setup, member):
    client = login(app, member)
    key = claim_form(client, setup.kit_id)
    response = client.post(
        f"/kits/{setup.kit_id}/claim",
        data={"point": setup.zgc, "mode": "pickup", "request_key": key},
    )
    assert response.status_code == 303
    assert re.fullmatch(r"/kits/claims/\d+", response.headers["Location"])
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        claim = db.session.scalar(sa.select(KitClaim))
        code = claim.pickup_code
    assert code in page and "已预约" in page
    svg = re.search(r"<svg[^>]*>.*?</svg>", page, re.S).group(0)
    assert "style=" not in svg and "<title>" in svg
    assert "<script" not in svg
    # the same form again (double click) lands on the same claim
    again = client.post(
        f"/kits/{setup.kit_id}/claim",
        data={"point": setup.zgc, "mode": "pickup", "request_key": key},
    )
    assert again.headers["Location"] == response.headers["Location"]
    with app.app_context():
        assert stock(setup.kit_id, setup.zgc).reserved == 1


def test_qr_encodes_the_absolute_verification_url(app, setup, member):
    import segno

    with app.app_context():
        claim = services.claim(member.id, setup.kit_id, setup.zgc)
        db.session.commit()
        with app.test_request_context(base_url="https://union.example.cn"):
            from memberplatform.kits.views import claim_qr

            svg = claim_qr(claim)
    expected = segno.make(f"https://union.example.cn/staff/pickup/{claim.pickup_code}", error="m")
    assert (
        expected.svg_inline(scale=1, omitsize=True, svgclass="qr", title=claim.pickup_code) == svg
    )


def test_claim_over_htmx_redirects_with_events(app, setup, member):
    client = login(app, member)
    response = client.post(
        f"/kits/{setup.kit_id}/claim",
        data={"point": setup.city, "mode": "pickup", "request_key": "hx-1"},
        headers=HX,
    )
    assert response.status_code == 204
    assert response.headers["HX-Redirect"].startswith("/kits/claims/")
    assert "points-changed" in response.headers["HX-Trigger"]


def test_claiming_twice_goes_to_the_existing_claim(app, setup, member):
    client = login(app, member)
    first = client.post(f"/kits/{setup.kit_id}/claim", data={"point": setup.zgc, "mode": "pickup"})
    second = client.post(
        f"/kits/{setup.kit_id}/claim", data={"point": setup.city, "mode": "pickup"}
    )
    assert second.status_code == 303 and second.headers["Location"] == first.headers["Location"]
    assert "您已申领过该物资" in client.get(second.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(KitClaim.id))) == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"mode": "pickup"}, "请选择领取点"),
        ({"point": "999", "mode": "pickup"}, "不是有效的选择"),
        ({"point": "zgc", "mode": "delivery", "address": ""}, "请填写收件地址"),
        ({"point": "zgc", "mode": "drone"}, "不是有效的选择"),
    ],
)
def test_bad_claim_input_is_answered_next_to_the_field(app, setup, member, data, message):
    data = {k: (setup.zgc if v == "zgc" else v) for k, v in data.items()}
    client = login(app, member)
    response = client.post(f"/kits/{setup.kit_id}/claim", data=data, headers=HX)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith("<form") and re.search(message, body)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(KitClaim.id))) == 0


def test_point_without_stock_is_refused(app, setup, make_user):
    members = [make_user() for _ in range(4)]
    with app.app_context():
        for m in members[:3]:
            services.claim(m.id, setup.kit_id, setup.city)
        db.session.commit()
    client = login(app, members[3])
    response = client.post(
        f"/kits/{setup.kit_id}/claim", data={"point": setup.city, "mode": "pickup"}
    )
    assert response.status_code == 422
    assert "该领取点已无剩余" in response.get_data(as_text=True)


def empty_the_shelf(app, setup, members) -> None:
    """The eight kits of the setup (5 at 中关村, 3 at 科学城) claimed by ``members``."""
    with app.app_context():
        for m in members[:5]:
            services.claim(m.id, setup.kit_id, setup.zgc)
        for m in members[5:8]:
            services.claim(m.id, setup.kit_id, setup.city)
        db.session.commit()


def test_a_claim_on_an_empty_shelf_makes_one_round_trip(app, setup, make_user):
    """Most of a rush: the session check and the kit's shelf are read together (one
    round trip on PostgreSQL) and the answer needs nothing else."""
    members = [make_user() for _ in range(10)]
    empty_the_shelf(app, setup, members[:8])
    with app.app_context():
        engine = db.engine
    data = {"point": setup.zgc, "mode": "pickup", "request_key": "late-member-form"}
    login(app, members[8]).post(f"/kits/{setup.kit_id}/claim", data=data, headers=HX)
    client = login(app, members[9])  # the statements prepared by the first
    with round_trips(engine) as sent:
        response = client.post(f"/kits/{setup.kit_id}/claim", data=data, headers=HX)
    assert response.status_code == 422
    # the signed-in user, the shelf (with the form's key)
    assert sum(len(group) for group in sent) == 2
    if engine.dialect.name == "postgresql":
        assert len(sent) == 1


def test_a_claim_on_an_empty_shelf_says_all_are_claimed(app, setup, make_user):
    """Most of a rush: every point is empty. htmx swaps the form for the news and the
    stock figures for zeros (out of band); nothing is written; without htmx the kit
    page says the same. A member who already holds a kit still lands on it."""
    members = [make_user() for _ in range(10)]
    empty_the_shelf(app, setup, members[:8])
    client = login(app, members[8])
    data = {"point": setup.zgc, "mode": "pickup", "request_key": "late-member-form"}
    response = client.post(f"/kits/{setup.kit_id}/claim", data=data, headers=HX)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert re.match(r'\s*<p class="status status-bad" id="claim-sold-out"', body)
    assert "已全部领完" in body and "<form" not in body
    oob = re.search(r'<section[^>]*id="kit-stock"[^>]*hx-swap-oob="true"', body)
    assert oob and body.count("已领完") == 2
    plain = client.post(f"/kits/{setup.kit_id}/claim", data=data)
    assert plain.status_code == 422
    page = plain.get_data(as_text=True)
    assert "已全部领完" in page and "<html" in page and "hx-swap-oob" not in page
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(KitClaim.id))) == 8
        assert (
            db.session.scalar(
                sa.select(sa.func.count(KitClaim.id)).where(KitClaim.request_key.is_not(None))
            )
            == 0
        )
    winner = login(app, members[0])
    again = winner.post(f"/kits/{setup.kit_id}/claim", data=data, headers=HX)
    assert again.status_code == 204 and "/kits/claims/" in again.headers["HX-Redirect"]


def test_the_empty_shelf_answer_reads_two_statements_without_a_session(app, setup, make_user):
    """Most of a rush costs the signed-in user's read and the shelf's, nothing else:
    no ORM session, no transaction (no write lock on SQLite)."""
    members = [make_user() for _ in range(9)]
    empty_the_shelf(app, setup, members[:8])
    with app.app_context():
        engine = db.engine
    sessions = []

    @app.after_request
    def note(response):  # runs before the platform's commit
        sessions.append(db.session.registry.has())
        return response

    client = login(app, members[8])
    data = {"point": setup.zgc, "mode": "pickup", "request_key": "late-member-form"}
    with count_queries(engine) as statements:
        response = client.post(f"/kits/{setup.kit_id}/claim", data=data, headers=HX)
    assert response.status_code == 422 and "已全部领完" in response.get_data(as_text=True)
    assert len(statements) == 2
    assert sessions[-1] is False
    with count_queries(engine) as statements:
        poll = client.get(f"/kits/{setup.kit_id}/stock", headers=HX)
    assert poll.status_code == 200 and poll.get_data(as_text=True).count("已领完") == 2
    assert len(statements) == 2


def test_the_sold_out_answer_is_rendered_once_per_worker_for_what_it_shows(app_factory, make_user):
    """With the fragment cache on (production), late members share one rendered answer,
    keyed by the stock as just read: a renamed point shows at once, and stock put
    back is claimed, not answered from the cache."""
    app = app_factory(PROGRESS_CACHE_SECONDS=60)
    staff = make_user(roles=("staff",))
    members = [make_user() for _ in range(4)]
    with app.app_context():
        point = services.save_point(
            staff.id, None, name="中关村软件园", address="西北旺东路10号", hours=""
        )
        kit_id = make_kit(staff.id)
        services.adjust_stock(staff.id, kit_id, point.id, 1, "首批到货")
        services.claim(members[0].id, kit_id, point.id)
        db.session.commit()
    data = {"point": point.id, "mode": "pickup"}
    late = [
        login(app, m).post(f"/kits/{kit_id}/claim", data=data, headers=HX) for m in members[1:3]
    ]
    assert [r.status_code for r in late] == [422, 422]
    assert late[0].get_data() == late[1].get_data()
    kept = [k for k in cache._store if k[0] == id(app) and k[2][0] == "kits.sold_out"]
    assert len(kept) == 1  # rendered once, for the one stock state both met
    assert "中关村软件园" in late[0].get_data(as_text=True)
    with app.app_context():
        services.save_point(
            staff.id,
            db.session.get(PickupPoint, point.id),
            name="中关村软件园二期",
            address="西北旺东路10号",
            hours="",
        )
        db.session.commit()
    renamed = login(app, members[1]).post(f"/kits/{kit_id}/claim", data=data, headers=HX)
    assert renamed.status_code == 422 and "中关村软件园二期" in renamed.get_data(as_text=True)
    with app.app_context():
        services.adjust_stock(staff.id, kit_id, point.id, 1, "补货")
        db.session.commit()
    winner = login(app, members[3]).post(f"/kits/{kit_id}/claim", data=data, headers=HX)
    assert winner.status_code == 204 and "/kits/claims/" in winner.headers["HX-Redirect"]


def test_the_kits_page_keeps_the_catalogue_but_reads_stock_and_claims_fresh(
    app_factory, make_user, monkeypatch
):
    """With the short cache on (production), a worker reads the published kits once per
    PROGRESS_CACHE_SECONDS: the next page reads only the member, the stock and their
    claims. A claim shows in the stock at once, an edit of the kit after the cache
    period, and each member is still judged on their own (the limit to an enterprise)."""
    from memberplatform.auth.services import get_or_create_enterprise

    app = app_factory(PROGRESS_CACHE_SECONDS=60)
    staff = make_user(roles=("staff",))
    with app.app_context():
        firm = get_or_create_enterprise("中关村软件园云计算有限公司")
        point = services.save_point(
            staff.id, None, name="中关村软件园", address="西北旺东路10号", hours=""
        )
        kit_id = make_kit(staff.id, enterprise_ids=[firm.id])
        services.adjust_stock(staff.id, kit_id, point.id, 5, "首批到货")
        db.session.commit()
        engine = db.engine
    insider = login(app, make_user(enterprise="中关村软件园云计算有限公司"))
    outsider = login(app, make_user(enterprise="别的公司"))
    with count_queries(engine) as first:
        page = insider.get("/kits").get_data(as_text=True)
    assert "剩余 5 份" in page and f'href="/kits/{kit_id}">申领</a>' in page
    assert "限以下单位会员：中关村软件园云计算有限公司" in page
    with count_queries(engine) as second:
        page = outsider.get("/kits").get_data(as_text=True)
    assert len(second) == len(first) - 4  # the kits, their contents, enterprises, branches
    assert "您暂不能申领该物资" in page and "该物资仅限以下单位的会员申领" in page
    assert f'href="/kits/{kit_id}">申领</a>' not in page
    response = insider.post(f"/kits/{kit_id}/claim", data={"point": point.id, "mode": "pickup"})
    assert response.status_code == 303
    page = insider.get("/kits").get_data(as_text=True)
    assert "剩余 4 份" in page and "您已申领" in page
    with app.app_context():
        kit = db.session.get(KitType, kit_id)
        kit.name = "健康防护包（第二批）"
        db.session.commit()
    assert "第二批" not in outsider.get("/kits").get_data(as_text=True)  # kept: 60 s
    later = cache.time.monotonic() + 61
    monkeypatch.setattr(cache.time, "monotonic", lambda: later)
    assert "健康防护包（第二批）" in outsider.get("/kits").get_data(as_text=True)


def test_ineligible_member_sees_why_and_cannot_claim(app, setup, make_user):
    with app.app_context():
        kit = db.session.get(KitType, setup.kit_id)
        kit.required_tag = "returned-to-work"
        db.session.commit()
    member = make_user()
    client = login(app, member)
    page = client.get(f"/kits/{setup.kit_id}").get_data(as_text=True)
    assert "您暂不能申领该物资" in page and "已返岗" in page
    assert "/kits/1/claim" not in page or 'id="claim-form"' not in page
    response = client.post(
        f"/kits/{setup.kit_id}/claim", data={"point": setup.zgc, "mode": "pickup"}
    )
    assert response.status_code == 422
    assert "已返岗" in response.get_data(as_text=True)


def test_closed_kit_is_refused(app, setup, member):
    from datetime import timedelta

    from memberplatform.db import utcnow

    with app.app_context():
        kit = db.session.get(KitType, setup.kit_id)
        kit.closes_at = utcnow() - timedelta(hours=1)
        kit.opens_at = utcnow() - timedelta(days=3)
        db.session.commit()
    client = login(app, member)
    assert "申领已于" in client.get("/kits").get_data(as_text=True)
    response = client.post(
        f"/kits/{setup.kit_id}/claim", data={"point": setup.zgc, "mode": "pickup"}
    )
    assert response.status_code == 422 and "申领已于" in response.get_data(as_text=True)


def test_unknown_ids_are_404(app, setup, member):
    client = login(app, member)
    assert client.get("/kits/999").status_code == 404
    assert client.post("/kits/999/claim", data={"point": setup.zgc}).status_code == 404
    assert client.get("/kits/claims/999").status_code == 404
    assert client.get("/kits/1/picture").status_code == 404


def test_a_member_cannot_open_or_cancel_anothers_claim(app, setup, member, make_user):
    other = make_user()
    with app.app_context():
        claim = services.claim(member.id, setup.kit_id, setup.zgc)
        db.session.commit()
    client = login(app, other)
    assert client.get(f"/kits/claims/{claim.id}").status_code == 404
    assert client.get(f"/kits/claims/{claim.id}/cancel").status_code == 404
    assert client.post(f"/kits/claims/{claim.id}/cancel").status_code == 404
    with app.app_context():
        assert db.session.get(KitClaim, claim.id).status == "reserved"


def test_cancel_asks_first_then_cancels_and_allows_a_new_claim(app, setup, member):
    with app.app_context():
        claim = services.claim(member.id, setup.kit_id, setup.zgc)
        db.session.commit()
    client = login(app, member)
    confirm = client.get(f"/kits/claims/{claim.id}/cancel", headers=HX)
    body = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and body.lstrip().startswith("<dialog data-open")
    assert "确定取消申领吗" in body
    plain = client.get(f"/kits/claims/{claim.id}/cancel").get_data(as_text=True)
    assert "<dialog" not in plain and "确定取消" in plain
    response = client.post(f"/kits/claims/{claim.id}/cancel")
    assert response.status_code == 303
    page = client.get(f"/kits/claims/{claim.id}").get_data(as_text=True)
    assert "已取消" in page and "重新申领" in page
    again = client.post(f"/kits/claims/{claim.id}/cancel", headers=HX)
    assert again.status_code == 422 and "该申领已无法取消" in again.get_data(as_text=True)
    new = client.post(f"/kits/{setup.kit_id}/claim", data={"point": setup.city, "mode": "pickup"})
    assert new.status_code == 303 and new.headers["Location"] != f"/kits/claims/{claim.id}"


def test_claim_page_fragment_for_polling(app, setup, member):
    with app.app_context():
        claim = services.claim(member.id, setup.kit_id, setup.zgc)
        db.session.commit()
    client = login(app, member)
    fragment = client.get(f"/kits/claims/{claim.id}", headers=HX).get_data(as_text=True)
    assert fragment.lstrip().startswith('<section class="card claim" id="claim-status"')
    assert 'hx-trigger="every 15s"' in fragment


# --- staff ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/staff/pickup",
        "/staff/pickup/ABCDEFGH",
        "/staff/kits",
        "/staff/kits/new",
        "/staff/kits/1/edit",
        "/staff/kits/1/stock",
        "/staff/kits/points",
        "/staff/kits/points/new",
        "/staff/kits/claims",
        "/staff/kits/claims.csv",
    ],
)
def test_staff_pages_are_for_staff_only(app, setup, member, client, path):
    assert client.get(path).status_code == 302  # anonymous: to the login page
    assert login(app, member).get(path).status_code == 403
    assert login(app, setup.staff).get(path).status_code in (200, 404)


@pytest.mark.parametrize(
    "path", ["/staff/pickup/ABCDEFGH/picked-up", "/staff/pickup/ABCDEFGH/shipped"]
)
def test_members_cannot_post_staff_actions(app, setup, member, path):
    assert login(app, member).post(path).status_code == 403


def test_staff_verify_and_hand_over_once(app, setup, member):
    with app.app_context():
        claim = services.claim(member.id, setup.kit_id, setup.zgc)
        db.session.commit()
    staff = login(app, setup.staff)
    page = staff.get(f"/staff/pickup/{claim.pickup_code}").get_data(as_text=True)
    assert "张*明" in page and "138****5678" in page and "张三明" not in page
    assert "确认发放" in page
    done = staff.post(f"/staff/pickup/{claim.pickup_code}/picked-up")
    assert done.status_code == 303
    page = staff.get(done.headers["Location"]).get_data(as_text=True)
    assert done.headers["Location"] == f"/staff/pickup/{claim.pickup_code}?done=1"
    assert "已发放" in page and "王干事" in page and "确认发放" not in page
    assert "核验人" not in page  # no "already picked up" warning right after the handover
    rescan = staff.get(f"/staff/pickup/{claim.pickup_code}").get_data(as_text=True)
    assert "核验人：王干事" in rescan and "确认发放" not in rescan
    second = staff.post(f"/staff/pickup/{claim.pickup_code}/picked-up", headers=HX)
    assert second.status_code == 422
    assert "已于" in second.get_data(as_text=True) and "王干事" in second.get_data(as_text=True)
    member_page = login(app, member).get(f"/kits/claims/{claim.id}").get_data(as_text=True)
    assert "已领取" in member_page
    with app.app_context():
        assert stock(setup.kit_id, setup.zgc).picked_up == 1


def test_code_lookup(app, setup, member):
    with app.app_context():
        claim = services.claim(member.id, setup.kit_id, setup.zgc)
        db.session.commit()
    staff = login(app, setup.staff)
    found = staff.get("/staff/pickup", query_string={"code": claim.pickup_code.lower()})
    assert found.status_code == 303
    assert found.headers["Location"] == f"/staff/pickup/{claim.pickup_code}"
    wrong = staff.get("/staff/pickup", query_string={"code": "ABC"}, headers=HX)
    assert wrong.status_code == 422 and "领取码为 8 位" in wrong.get_data(as_text=True)
    assert wrong.get_data(as_text=True).lstrip().startswith('<div id="lookup">')
    unknown = staff.get("/staff/pickup", query_string={"code": "ABCDEFGH"})
    assert unknown.status_code == 422 and "没有与该领取码对应的申领" in unknown.get_data(
        as_text=True
    )
    bad_url = staff.get("/staff/pickup/ABC0")
    assert bad_url.status_code == 404 and "领取码为 8 位" in bad_url.get_data(as_text=True)
    assert staff.get("/staff/pickup/ABCDEFGH").status_code == 404


def test_lookup_by_phone_shows_masked_claims(app, setup, member):
    with app.app_context():
        claim = services.claim(member.id, setup.kit_id, setup.zgc)
        db.session.commit()
    staff = login(app, setup.staff)
    page = staff.get("/staff/pickup", query_string={"phone": "138 1234 5678"}, headers=HX)
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and claim.pickup_code in body and "张*明" in body
    none = staff.get("/staff/pickup", query_string={"phone": "13900000000"})
    assert "该会员没有申领记录" in none.get_data(as_text=True)
    bad = staff.get("/staff/pickup", query_string={"phone": "123"})
    assert bad.status_code == 422


def test_cancelled_and_expired_codes_say_so(app, setup, member, make_user):
    from datetime import timedelta

    from memberplatform.db import utcnow

    other = make_user()
    with app.app_context():
        kit = db.session.get(KitType, setup.kit_id)
        kit.opens_at = utcnow() - timedelta(days=10)
        cancelled = services.claim(member.id, setup.kit_id, setup.zgc)
        services.cancel(member.id, cancelled.id)
        late = services.claim(other.id, setup.kit_id, setup.zgc, now=utcnow() - timedelta(days=5))
        db.session.commit()
    staff = login(app, setup.staff)
    page = staff.get(f"/staff/pickup/{cancelled.pickup_code}").get_data(as_text=True)
    assert "该申领已被会员取消" in page and "确认发放" not in page
    page = staff.get(f"/staff/pickup/{late.pickup_code}").get_data(as_text=True)
    assert "该预约已于" in page and "过期" in page and "确认发放" not in page
    refused = staff.post(f"/staff/pickup/{late.pickup_code}/picked-up")
    assert refused.status_code == 422


def test_delivery_claim_is_shipped_with_a_note_the_member_sees(app, setup, member):
    client = login(app, member)
    made = client.post(
        f"/kits/{setup.kit_id}/claim",
        data={"point": setup.city, "mode": "delivery", "address": "上地十街1号"},
    )
    assert made.status_code == 303
    with app.app_context():
        code = db.session.scalar(sa.select(KitClaim.pickup_code))
    staff = login(app, setup.staff)
    page = staff.get(f"/staff/pickup/{code}").get_data(as_text=True)
    assert "上地十街1号" in page and "标记为已寄出" in page
    empty = staff.post(f"/staff/pickup/{code}/shipped", data={"tracking_note": ""}, headers=HX)
    assert empty.status_code == 422 and "此项为必填项" in empty.get_data(as_text=True)
    shipped = staff.post(f"/staff/pickup/{code}/shipped", data={"tracking_note": "顺丰 SF123"})
    assert shipped.status_code == 303
    page = client.get(made.headers["Location"]).get_data(as_text=True)
    assert "已寄出" in page and "顺丰 SF123" in page


def test_staff_manage_points_kits_and_stock(app, setup):
    staff = login(app, setup.staff)
    response = staff.post(
        "/staff/kits/points/new",
        data={
            "name": "软件园东区",
            "address": "东北旺西路8号",
            "hours": "9:00–17:00",
            "active": "y",
        },
    )
    assert response.status_code == 303
    clash = staff.post(
        "/staff/kits/points/new", data={"name": "软件园东区", "address": "x"}, headers=HX
    )
    assert clash.status_code == 422 and "已有同名领取点" in clash.get_data(as_text=True)
    bad = staff.post(
        "/staff/kits/new",
        data={
            "name": "新冠抗体检测试剂",
            "contents": "试剂盒",
            "opens_at": "2020-03-01T09:00",
            "closes_at": "2020-02-01T09:00",
            "points_cost": "0",
        },
        headers=HX,
    )
    assert bad.status_code == 422 and "第 1 行" in bad.get_data(as_text=True)
    made = staff.post(
        "/staff/kits/new",
        data={
            "name": "新冠抗体检测试剂",
            "contents": "试剂盒 ×1\n采血针 ×1",
            "opens_at": "2020-03-01T09:00",
            "closes_at": "2030-03-01T09:00",
            "points_cost": "10",
            "required_tag": "returned-to-work",
            "delivery_allowed": "y",
            "active": "y",
        },
    )
    assert made.status_code == 303
    with app.app_context():
        kit = db.session.scalar(sa.select(KitType).where(KitType.name == "新冠抗体检测试剂"))
        assert [(i.name, i.quantity) for i in kit.items] == [("试剂盒", 1), ("采血针", 1)]
        assert kit.opens_at.hour == 1  # 09:00 in Shanghai is 01:00 UTC
        point = db.session.scalar(sa.select(PickupPoint).where(PickupPoint.name == "软件园东区"))
        kit_id, point_id = kit.id, point.id
    assert made.headers["Location"] == f"/staff/kits/{kit_id}/stock"
    edit = staff.get(f"/staff/kits/{kit_id}/edit").get_data(as_text=True)
    assert "试剂盒 ×1" in edit and "2020-03-01T09:00" in edit
    no_reason = staff.post(
        f"/staff/kits/{kit_id}/stock", data={"point": point_id, "delta": "50"}, headers=HX
    )
    assert no_reason.status_code == 422 and "请填写变更原因" in no_reason.get_data(as_text=True)
    added = staff.post(
        f"/staff/kits/{kit_id}/stock", data={"point": point_id, "delta": "50", "reason": "到货"}
    )
    assert added.status_code == 303
    too_many = staff.post(
        f"/staff/kits/{kit_id}/stock",
        data={"point": point_id, "delta": "-51", "reason": "损坏"},
        headers=HX,
    )
    assert too_many.status_code == 422 and "当前仅剩 50 份" in too_many.get_data(as_text=True)
    page = staff.get(f"/staff/kits/{kit_id}/stock").get_data(as_text=True)
    assert "+50" in page and "到货" in page
    overview = staff.get("/staff/kits").get_data(as_text=True)
    assert "新冠抗体检测试剂" in overview and "到货" in overview


def test_kit_picture_upload_and_serving(app, setup, client):
    import io

    staff = login(app, setup.staff)
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 64
    data = {
        "name": "健康防护包",
        "contents": "口罩 ×20",
        "opens_at": "2020-03-01T09:00",
        "closes_at": "2030-03-01T09:00",
        "points_cost": "0",
        "active": "y",
        "picture": (io.BytesIO(png), "kit.png"),
    }
    response = staff.post(
        f"/staff/kits/{setup.kit_id}/edit", data=data, content_type="multipart/form-data"
    )
    assert response.status_code == 303
    picture = client.get(f"/kits/{setup.kit_id}/picture")
    assert picture.status_code == 200 and picture.mimetype == "image/png"
    data["picture"] = (io.BytesIO(b"GIF89a not allowed"), "kit.gif")
    refused = staff.post(
        f"/staff/kits/{setup.kit_id}/edit", data=data, content_type="multipart/form-data"
    )
    assert refused.status_code == 422


def test_claims_list_filters_and_pages(app, setup, make_user):
    members = [make_user() for _ in range(35)]
    with app.app_context():
        services.adjust_stock(setup.staff.id, setup.kit_id, setup.zgc, 40, "补货")
        for m in members:
            services.claim(m.id, setup.kit_id, setup.zgc)
        first = db.session.scalar(sa.select(KitClaim).order_by(KitClaim.id))
        services.mark_picked_up(first.id, setup.staff.id)
        db.session.commit()
    staff = login(app, setup.staff)
    page = staff.get("/staff/kits/claims").get_data(as_text=True)
    assert "共 35 条申领" in page and "第 1 页，共 2 页" in page
    picked = staff.get(
        "/staff/kits/claims", query_string={"status": "picked_up"}, headers=HX
    ).get_data(as_text=True)
    assert picked.lstrip().startswith('<section class="card" id="results"')
    assert "共 1 条申领" in picked
    at_city = staff.get("/staff/kits/claims", query_string={"point": setup.city})
    assert "共 0 条申领" in at_city.get_data(as_text=True)
    today = staff.get(
        "/staff/kits/claims", query_string={"day_from": "2000-01-01", "day_to": "2000-01-02"}
    )
    assert "没有符合条件的申领" in today.get_data(as_text=True)
    junk = staff.get("/staff/kits/claims", query_string={"status": "nonsense", "point": "x"})
    assert junk.status_code == 200 and "共 35 条申领" in junk.get_data(as_text=True)


def test_csv_export_is_formula_safe(app, setup, make_user):
    evil = make_user(name="=HYPERLINK(1)", phone="13811112222")
    with app.app_context():
        services.claim(evil.id, setup.kit_id, setup.zgc)
        db.session.commit()
    staff = login(app, setup.staff)
    response = staff.get("/staff/kits/claims.csv", query_string={"status": "reserved"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff领取码,物资,领取点")
    assert "'=HYPERLINK(1)" in text and "13811112222" in text


def test_panels_on_me_home_and_admin(app, setup, member):
    from memberplatform.core.registry import admin_panels

    with app.app_context():
        services.claim(member.id, setup.kit_id, setup.zgc)
        db.session.commit()
    client = login(app, member)
    me = client.get("/me").get_data(as_text=True)
    assert "我的健康物资" in me and "健康防护包" in me
    home = client.get("/").get_data(as_text=True)
    assert "健康物资剩余" in home
    with app.app_context():
        panel = next(p for p in admin_panels if p.name == "kits")
        figures = panel.context()["figures"]
        assert (figures.received, figures.claimed, figures.available) == (8, 1, 7)

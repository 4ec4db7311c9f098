"""Legal services: the status machine, the claim race, conflicts, bad input, notifications."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from memberplatform.audit.models import AuditEntry
from memberplatform.auth.models import User
from memberplatform.core.errors import DomainError
from memberplatform.db import utcnow
from memberplatform.extensions import db
from memberplatform.legal import services
from memberplatform.legal.models import (
    STATUSES,
    LegalRequest,
    MenuItem,
    RequestAttachment,
    RequestEvent,
    RequestMessage,
)
from memberplatform.notifications.models import Notification
from tests.concurrency import integrity_problems, run_together
from tests.legal.conftest import PDF, PNG, claimed, pdf_file, req, submit, user


def kinds_for(user_id: int) -> list[str]:
    return list(
        db.session.scalars(
            sa.select(Notification.kind)
            .where(Notification.user_id == user_id)
            .order_by(Notification.id)
        )
    )


# --- submitting -----------------------------------------------------------------------


def test_submit_gives_a_number_a_deadline_and_a_trail(app, world):
    request_id = submit(app, world, files=[pdf_file()], other_party="华信建筑 劳务有限公司")
    with app.app_context():
        r = req(request_id)
        assert r.number.startswith("FL-") and r.number.endswith("-000001")
        assert r.status == "submitted" and r.lawyer_id is None
        assert r.field_values == {"amount_owed": "12000"}
        assert r.other_party_key == "华信建筑劳务有限公司"
        assert r.due_at > r.created_at
        [message] = db.session.scalars(sa.select(RequestMessage)).all()
        assert message.kind == "question" and len(message.attachments) == 1
        assert message.attachments[0].upload.content_type == "application/pdf"
        [event] = db.session.scalars(sa.select(RequestEvent)).all()
        assert (event.action, event.from_status, event.to_status) == ("submit", None, "submitted")
        assert (
            db.session.scalar(
                sa.select(AuditEntry.action).where(AuditEntry.object_type == "legal_request")
            )
            == "legal.request.submit"
        )
    assert integrity_problems(app) == []


def _nothing_written(app, upload_dir=None):
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(LegalRequest.id))) == 0
        assert db.session.scalar(sa.select(sa.func.count(RequestMessage.id))) == 0
        assert db.session.scalar(sa.select(sa.func.count(RequestAttachment.id))) == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"question": "   "}, "question"),
        ({"question": "x" * 50_000}, "question"),
        ({"values": {}}, "f_amount_owed"),  # required item field
        ({"values": {"amount_owed": "twelve"}}, "f_amount_owed"),
        ({"values": {"amount_owed": "-5"}}, "f_amount_owed"),
        ({"values": {"amount_owed": "1", "last_paid": "2026-02-30"}}, "f_last_paid"),
        ({"other_party": "x" * 121}, "other_party"),
        ({"files": [pdf_file("fake.pdf", b"just text, renamed to .pdf")]}, "attachments"),
        ({"files": [pdf_file("a.exe", b"MZ\x90\x00")]}, "attachments"),
        ({"files": [pdf_file(f"{i}.pdf") for i in range(4)]}, "attachments"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(app, world, tmp_path, kwargs, field):
    with pytest.raises(DomainError) as error:
        submit(app, world, **kwargs)
    assert error.value.field == field
    _nothing_written(app)
    uploads = tmp_path / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())


def test_a_bad_second_file_removes_the_first(app, world, tmp_path):
    with pytest.raises(DomainError):
        submit(app, world, files=[pdf_file(), pdf_file("b.pdf", b"GIF89a")])
    assert not any((tmp_path / "uploads").iterdir())
    _nothing_written(app)


def test_oversized_file_refused(app_factory, world):
    small = app_factory(LEGAL_ATTACHMENT_MAX_MB=0.001)  # about 1 KB, same database
    with pytest.raises(DomainError) as error:
        submit(small, world, files=[pdf_file(data=PDF + PNG * 100)])
    assert error.value.field == "attachments"
    _nothing_written(small)


def test_retired_item_takes_no_new_requests(app, world):
    with app.app_context():
        services.set_item_status(world.admin.id, db.session.get(MenuItem, world.item_id), "retired")
        db.session.commit()
    with pytest.raises(DomainError):
        submit(app, world)


def test_item_in_use_cannot_be_deleted_unused_can(app, world):
    submit(app, world)
    with app.app_context():
        item = db.session.get(MenuItem, world.item_id)
        with pytest.raises(DomainError):
            services.delete_item(world.admin.id, item)
        db.session.rollback()
        spare = services.save_item(
            world.admin.id,
            None,
            category_id=world.category_id,
            code="spare",
            title="备用",
            title_en=None,
            description="说明",
            prepare="",
            sla_hours=4,
            fields=[],
        )
        services.delete_item(world.admin.id, spare)
        db.session.commit()
        assert db.session.scalar(sa.select(MenuItem.id).where(MenuItem.code == "spare")) is None


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        '{"name": "x"}',
        '[{"name": "Bad Name", "label_zh": "甲"}]',
        '[{"name": "a", "label_zh": "甲"}, {"name": "a", "label_zh": "乙"}]',
        '[{"name": "a", "label_zh": ""}]',
        '[{"name": "a", "label_zh": "甲", "type": "file"}]',
        '[{"name": "a", "label_zh": "甲", "required": "yes"}]',
    ],
)
def test_bad_field_definitions_refused(raw):
    with pytest.raises(DomainError) as error:
        services.parse_field_definitions(raw)
    assert error.value.field == "fields"


def test_field_definitions_cleaned():
    assert services.parse_field_definitions(
        '[{"name": "amount", "label_zh": "金额", "type": "number", "required": true}]'
    ) == [
        {"name": "amount", "label_zh": "金额", "label_en": "", "type": "number", "required": True}
    ]


# --- the status machine ------------------------------------------------------------------


def _put_in(app, w, status: str) -> int:
    """A request in ``status`` (lawyer = w.lawyer unless submitted)."""
    request_id = submit(app, w)
    with app.app_context():
        r = req(request_id)
        now = utcnow()
        if status != "submitted":
            r.lawyer_id, r.assigned_at = w.lawyer.id, now
        if status in ("answered", "closed"):
            r.answered_at = r.first_response_at = now
        if status == "closed":
            r.closed_at = now
        r.status = status
        db.session.add(
            RequestEvent(request_id=r.id, action="test", from_status="submitted", to_status=status)
        )
        db.session.commit()
    return request_id


def _do(action: str, w, r):
    if action == "claim":
        return services.claim(user(w.lawyer2), r)
    if action == "reassign":
        return services.reassign(user(w.admin), r, user(w.lawyer2))
    if action == "ask_info":
        return services.ask_for_information(user(w.lawyer), r, "请补充工资条。")
    if action == "answer":
        return services.answer(user(w.lawyer), r, "可以申请劳动仲裁。")
    if action == "follow_up":
        return services.follow_up(user(w.member), r, "补充：公司已搬走。")
    if action == "hand_back":
        return services.hand_back(user(w.lawyer), r, "不熟悉该领域")
    if action == "close":
        return services.close(user(w.member), r)
    raise AssertionError(action)


def test_transition_table_is_complete():
    assert set(services.ACTIONS) == {
        "claim",
        "reassign",
        "ask_info",
        "answer",
        "follow_up",
        "hand_back",
        "close",
    }
    assert all(status in STATUSES for _, status in services.TRANSITIONS)
    assert all(status in STATUSES for status in services.TRANSITIONS.values())
    assert not any(status == "closed" for _, status in services.TRANSITIONS)  # terminal


@pytest.mark.parametrize("status", STATUSES)
def test_every_allowed_and_every_refused_transition(app, world, status):
    for action in services.ACTIONS:
        request_id = _put_in(app, world, status)
        expected = services.TRANSITIONS.get((action, status))
        with app.app_context():
            r = req(request_id)
            if expected is None:
                with pytest.raises(DomainError):
                    _do(action, world, r)
                db.session.rollback()
                assert req(request_id).status == status, (action, status)
                events = db.session.scalars(
                    sa.select(RequestEvent).where(RequestEvent.request_id == request_id)
                ).all()
                assert [e.action for e in events] == ["submit", "test"], (action, status)
            else:
                _do(action, world, r)
                db.session.commit()
                assert req(request_id).status == expected, (action, status)
                last = db.session.scalars(
                    sa.select(RequestEvent)
                    .where(RequestEvent.request_id == request_id)
                    .order_by(RequestEvent.id.desc())
                ).first()
                assert (last.action, last.from_status, last.to_status) == (action, status, expected)
                assert last.actor_id is not None and last.created_at is not None
                audited = db.session.scalar(
                    sa.select(AuditEntry).where(
                        AuditEntry.action == f"legal.request.{action}",
                        AuditEntry.object_id == str(request_id),
                    )
                )
                assert audited.changes["from"] == status and audited.changes["to"] == expected


def test_next_status_refuses_unknown_moves():
    assert services.next_status("claim", "submitted") == "assigned"
    with pytest.raises(services.InvalidTransition):
        services.next_status("answer", "closed")
    with pytest.raises(services.InvalidTransition):
        services.next_status("fly", "submitted")


# --- the lawyer's work ------------------------------------------------------------------


def test_answer_flow_notifies_and_records_first_response(app, world):
    request_id = claimed(app, world)
    with app.app_context():
        services.ask_for_information(user(world.lawyer), req(request_id), "请上传工资条。")
        db.session.commit()
        services.follow_up(user(world.member), req(request_id), "见附件。", files=[pdf_file()])
        db.session.commit()
        services.answer(user(world.lawyer), req(request_id), "可申请劳动仲裁。", files=[pdf_file()])
        db.session.commit()
        r = req(request_id)
        assert r.status == "answered" and r.answered_at is not None
        assert r.first_response_seconds is not None and r.first_response_at <= r.answered_at
        assert kinds_for(world.member.id) == [
            "legal.assigned",
            "legal.info_requested",
            "legal.answered",
        ]
        assert kinds_for(world.lawyer.id) == ["legal.follow_up"]
        services.rate(user(world.member), r, 4, "清楚")
        db.session.commit()
        with pytest.raises(DomainError):
            services.rate(user(world.member), req(request_id), 5)
        db.session.rollback()
        services.close(user(world.member), req(request_id))
        db.session.commit()
        with pytest.raises(DomainError):
            services.answer(user(world.lawyer), req(request_id), "补充一句")
        db.session.rollback()
        assert req(request_id).rating == 4 and req(request_id).status == "closed"
    assert integrity_problems(app) == []


def test_only_the_right_people_act(app, world):
    request_id = claimed(app, world)
    with app.app_context():
        r = req(request_id)
        with pytest.raises(DomainError):
            services.answer(user(world.lawyer2), r, "不是我的")
        with pytest.raises(DomainError):
            services.follow_up(user(world.other), r, "别人的")
        with pytest.raises(DomainError):
            services.close(user(world.other), r)
        with pytest.raises(DomainError):
            services.add_note(user(world.lawyer2), r, "看不到")
        with pytest.raises(DomainError):
            services.reassign(user(world.staff), r, user(world.lawyer2))
        with pytest.raises(DomainError):
            services.rate(user(world.member), r, 5)  # not answered yet
        with pytest.raises(DomainError):
            services.answer(user(world.lawyer), r, "  ")  # empty answer
        db.session.rollback()
        assert req(request_id).status == "assigned"


def test_internal_notes_hidden_from_the_member(app, world):
    request_id = claimed(app, world)
    with app.app_context():
        services.add_note(user(world.lawyer), req(request_id), "当事人情绪激动")
        services.add_note(user(world.admin), req(request_id), "已电话联系")
        db.session.commit()
        r = req(request_id)
        assert [m.kind for m in services.thread(r, user(world.member))] == ["question"]
        assert len(services.thread(r, user(world.lawyer))) == 3
        assert len(services.thread(r, user(world.admin))) == 3


def test_hand_back_returns_to_the_queue(app, world):
    request_id = claimed(app, world)
    with app.app_context():
        services.hand_back(user(world.lawyer), req(request_id), "需要劳动仲裁专家")
        db.session.commit()
        r = req(request_id)
        assert r.status == "submitted" and r.lawyer_id is None
        queue = db.session.scalars(services.queue_query(user(world.lawyer2))).all()
        assert [q.id for q in queue] == [request_id]
        services.claim(user(world.lawyer2), r)
        db.session.commit()
    assert integrity_problems(app) == []


def test_reassign_notifies_everyone(app, world):
    request_id = claimed(app, world)
    with app.app_context():
        services.reassign(user(world.admin), req(request_id), user(world.lawyer2))
        db.session.commit()
        assert req(request_id).lawyer_id == world.lawyer2.id
        assert "legal.reassigned_to_you" in kinds_for(world.lawyer2.id)
        assert "legal.reassigned_away" in kinds_for(world.lawyer.id)
        assert "legal.reassigned" in kinds_for(world.member.id)


def test_queue_only_shows_items_the_lawyer_may_take_oldest_first(app, world, make_user):
    third = make_user(roles=("lawyer",))
    with app.app_context():
        item = db.session.get(MenuItem, world.item_id)
        services.save_item(
            world.admin.id,
            item,
            category_id=world.category_id,
            code=item.code,
            title=item.title,
            title_en=None,
            description=item.description,
            prepare="",
            sla_hours=8,
            fields=item.fields,
            lawyer_ids=[world.lawyer.id],
        )
        db.session.commit()
    first = submit(app, world)
    second = submit(app, world, member=world.other)
    with app.app_context():
        assert [r.id for r in db.session.scalars(services.queue_query(user(world.lawyer)))] == [
            first,
            second,
        ]
        assert db.session.scalars(services.queue_query(user(third))).all() == []
        with pytest.raises(DomainError):
            services.claim(user(third), req(first))
        # staff see the summary of every waiting request
        assert len(db.session.scalars(services.queue_query(user(world.staff))).all()) == 2


def test_conflict_check(app, world):
    request_id = submit(app, world, other_party="华信建筑劳务有限公司")
    with app.app_context():
        services.add_client(world.admin.id, user(world.lawyer), "华信建筑 劳务有限公司")
        db.session.commit()
        with pytest.raises(DomainError) as error:
            services.claim(user(world.lawyer), req(request_id))
        assert "华信" in str(error.value.message)
        db.session.rollback()
        with pytest.raises(DomainError):
            services.reassign(user(world.admin), req(request_id), user(world.lawyer))
        db.session.rollback()
        services.claim(user(world.lawyer2), req(request_id))
        db.session.commit()
        assert req(request_id).lawyer_id == world.lawyer2.id


# --- concurrency -----------------------------------------------------------------------


def test_ten_lawyers_claim_the_same_request_exactly_one_wins(app, world, make_user):
    lawyers = [make_user(roles=("lawyer",)).id for _ in range(10)]
    request_id = submit(app, world)
    results = run_together(
        app, 10, lambda i: services.claim(db.session.get(User, lawyers[i]), req(request_id))
    )
    winners = [r for r in results if isinstance(r, LegalRequest)]
    refused = [r for r in results if isinstance(r, DomainError)]
    assert len(winners) == 1 and len(refused) == 9, results
    with app.app_context():
        r = req(request_id)
        assert r.status == "assigned" and r.lawyer_id in lawyers
        claims = db.session.scalars(
            sa.select(RequestEvent).where(RequestEvent.action == "claim")
        ).all()
        assert len(claims) == 1 and claims[0].actor_id == r.lawyer_id
    assert integrity_problems(app) == []


def test_concurrent_submissions_get_distinct_numbers(app, world, make_user):
    members = [make_user().id for _ in range(12)]
    item_id = world.item_id

    def submit_one(i):
        return services.submit_request(
            db.session.get(User, members[i]),
            db.session.get(MenuItem, item_id),
            question=f"问题 {i}",
            values={"amount_owed": "1"},
        ).number

    numbers = run_together(app, 12, submit_one)
    assert all(isinstance(n, str) for n in numbers), numbers
    assert sorted(int(n.rsplit("-", 1)[1]) for n in numbers) == list(range(1, 13))
    assert integrity_problems(app) == []


def test_answer_and_close_race_one_wins(app, world):
    request_id = claimed(app, world)
    lawyer_id, member_id = world.lawyer.id, world.member.id

    def act(i):
        r = req(request_id)
        if i % 2:
            return services.answer(db.session.get(User, lawyer_id), r, "答复")
        return services.close(db.session.get(User, member_id), r)

    run_together(app, 6, act)
    with app.app_context():
        assert req(request_id).status in ("answered", "closed")
    assert integrity_problems(app) == []


# --- overdue, figures, export -------------------------------------------------------------


def test_overdue_notifications_are_sent_once(app, world, runner):
    waiting = submit(app, world)
    mine = claimed(app, world)
    with app.app_context():
        for request_id in (waiting, mine):
            req(request_id).due_at = utcnow() - timedelta(hours=1)
        db.session.commit()
    first = runner.invoke(args=["legal-notify-overdue"])
    assert first.exit_code == 0 and "3 overdue" in first.output  # admin ×2, lawyer ×1
    second = runner.invoke(args=["legal-notify-overdue"])
    assert "0 overdue" in second.output
    with app.app_context():
        assert kinds_for(world.lawyer.id).count("legal.overdue") == 1
        assert kinds_for(world.admin.id).count("legal.overdue") == 2
        assert kinds_for(world.lawyer2.id) == []


def test_figures(app, world):
    a = claimed(app, world)
    b = claimed(app, world)
    submit(app, world)
    with app.app_context():
        start = utcnow()
        services.answer(
            user(world.lawyer), req(a), "答", now=req(a).created_at + timedelta(hours=1)
        )
        services.answer(
            user(world.lawyer), req(b), "答", now=req(b).created_at + timedelta(hours=3)
        )
        db.session.commit()
        services.rate(user(world.member), req(a), 5)
        services.rate(user(world.member), req(b), 2)
        req(b).due_at = start - timedelta(hours=1)
        db.session.commit()
        figures = services.figures(start)
        assert figures.total == 3
        assert figures.per_item == [("欠薪追讨", 3)]
        assert figures.median_first_response_seconds == 2 * 3600
        assert figures.average_rating == 3.5 and figures.ratings == 2
        assert figures.overdue == 0  # b is answered: not waiting for a lawyer

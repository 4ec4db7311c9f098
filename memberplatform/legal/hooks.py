"""What the legal domain registers: notification texts, integrity checks, demo data,
the /me, /admin and home panels, and the CSV export."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache

import sqlalchemy as sa
import sqlalchemy.orm as so

from memberplatform.core.registry import (
    admin_panel,
    demo_seeder,
    home_panel,
    integrity_check,
    me_panel,
    register_export,
)
from memberplatform.db import utcnow
from memberplatform.extensions import db
from memberplatform.legal import services
from memberplatform.legal.models import (
    Category,
    ConsultationSession,
    Hotline,
    LegalRequest,
    MenuItem,
    RequestAttachment,
    RequestCounter,
    RequestEvent,
    RequestMessage,
)
from memberplatform.legal.sla import SHANGHAI
from memberplatform.notifications.services import register_message
from memberplatform.web.i18n import lazy_gettext as _l

register_message("legal.assigned", _l("A lawyer has taken your legal request %(number)s."))
register_message("legal.answered", _l("A lawyer answered your legal request %(number)s."))
register_message(
    "legal.info_requested",
    _l("The lawyer needs more information for your legal request %(number)s."),
)
register_message("legal.follow_up", _l("The member added a message to legal request %(number)s."))
register_message("legal.reassigned_to_you", _l("Legal request %(number)s was assigned to you."))
register_message(
    "legal.reassigned_away", _l("Legal request %(number)s was reassigned to another lawyer.")
)
register_message(
    "legal.reassigned", _l("Your legal request %(number)s is now handled by another lawyer.")
)
register_message("legal.closed", _l("Legal request %(number)s was closed by the member."))
register_message(
    "legal.overdue", _l("Legal request %(number)s (%(item)s) is past its response time.")
)

register_export(_l("Legal requests"), "legal.export_csv", roles=("admin",))


# --- integrity ----------------------------------------------------------------------


@integrity_check("legal: a lawyer exactly on assigned, waiting and answered requests")
def _lawyer_matches_status(session: so.Session) -> Iterator[str]:
    rows = session.execute(
        sa.select(LegalRequest.number, LegalRequest.status, LegalRequest.lawyer_id).where(
            sa.or_(
                sa.and_(LegalRequest.status == "submitted", LegalRequest.lawyer_id.is_not(None)),
                sa.and_(
                    LegalRequest.status.in_(("assigned", "waiting_for_member", "answered")),
                    LegalRequest.lawyer_id.is_(None),
                ),
            )
        )
    )
    for number, status, lawyer_id in rows:
        yield f"request {number}: status {status} with lawyer {lawyer_id}"


@integrity_check("legal: every request's status is the last status of its audit trail")
def _status_matches_trail(session: so.Session) -> Iterator[str]:
    last = (
        sa.select(RequestEvent.request_id, sa.func.max(RequestEvent.id).label("event_id"))
        .group_by(RequestEvent.request_id)
        .subquery()
    )
    rows = session.execute(
        sa.select(LegalRequest.number, LegalRequest.status, RequestEvent.to_status)
        .outerjoin(last, last.c.request_id == LegalRequest.id)
        .outerjoin(RequestEvent, RequestEvent.id == last.c.event_id)
        .where(sa.or_(RequestEvent.id.is_(None), RequestEvent.to_status != LegalRequest.status))
        .limit(100)
    )
    for number, status, trail in rows:
        yield f"request {number}: status {status} but its trail ends at {trail}"


@integrity_check("legal: each status change in the trail starts where the previous ended")
def _trail_is_a_chain(session: so.Session) -> Iterator[str]:
    previous = (
        sa.func.lag(RequestEvent.to_status)
        .over(partition_by=RequestEvent.request_id, order_by=RequestEvent.id)
        .label("previous")
    )
    inner = sa.select(RequestEvent.id, RequestEvent.from_status, previous).subquery()
    rows = session.execute(
        sa.select(inner.c.id, inner.c.from_status, inner.c.previous)
        .where(
            sa.or_(
                sa.and_(inner.c.previous.is_(None), inner.c.from_status.is_not(None)),
                sa.and_(inner.c.previous.is_not(None), inner.c.from_status.is_(None)),
                inner.c.previous != inner.c.from_status,
            )
        )
        .limit(100)
    )
    for event_id, from_status, before in rows:
        yield f"event {event_id}: from {from_status} but the previous event ended at {before}"


@integrity_check("legal: ratings only on answered requests, 1 to 5")
def _ratings(session: so.Session) -> Iterator[str]:
    rows = session.execute(
        sa.select(LegalRequest.number, LegalRequest.rating).where(
            LegalRequest.rating.is_not(None),
            sa.or_(
                LegalRequest.answered_at.is_(None),
                LegalRequest.rating < 1,
                LegalRequest.rating > 5,
            ),
        )
    )
    for number, rating in rows:
        yield f"request {number}: rating {rating} without an answer or out of range"


@integrity_check("legal: attachments belong to a message of their own request")
def _attachments(session: so.Session) -> Iterator[str]:
    rows = session.execute(
        sa.select(RequestAttachment.id, RequestAttachment.request_id, RequestMessage.request_id)
        .join(RequestMessage, RequestMessage.id == RequestAttachment.message_id)
        .where(RequestMessage.request_id != RequestAttachment.request_id)
    )
    for attachment_id, request_id, message_request in rows:
        yield (
            f"attachment {attachment_id}: request {request_id} "
            f"but its message is on {message_request}"
        )


@integrity_check("legal: request numbers never run ahead of the yearly counter")
def _numbers(session: so.Session) -> Iterator[str]:
    counters = dict(session.execute(sa.select(RequestCounter.year, RequestCounter.last)).all())
    numbers = session.scalars(sa.select(LegalRequest.number))
    highest: dict[int, int] = {}
    for number in numbers:
        _, year, seq = number.split("-")
        highest[int(year)] = max(highest.get(int(year), 0), int(seq))
    for year, seq in highest.items():
        if seq > counters.get(year, 0):
            yield f"year {year}: number {seq} beyond counter {counters.get(year, 0)}"


# --- panels --------------------------------------------------------------------------


def _me_reads(user_id: int) -> list[tuple[sa.Select, dict]]:
    return [(_my_latest_requests(), {"user_id": user_id})]


@me_panel("legal", 50, "legal/_me_panel.html", reads=_me_reads)
def _me_panel(user) -> dict:
    rows = db.read(*_me_reads(user.id)[0]).all()
    return {
        "requests": [
            (r, str(services.STATUS_LABELS[r.status]), services.STATUS_CLASSES[r.status])
            for r in rows
        ],
        "is_lawyer": "lawyer" in user.roles,
    }


@cache
def _my_latest_requests() -> sa.Select:
    return (
        sa.select(
            LegalRequest.id,
            LegalRequest.number,
            LegalRequest.status,
            MenuItem.title.label("item_title"),
        )
        .join(MenuItem, MenuItem.id == LegalRequest.item_id)
        .where(LegalRequest.requester_id == sa.bindparam("user_id"))
        .order_by(LegalRequest.id.desc())
        .limit(5)
    )


@admin_panel("legal", 50, "legal/_admin_panel.html")
def _admin_panel() -> dict:
    return {"figures": services.figures()}


@home_panel("legal", 50, "legal/_home_panel.html")
def _home_panel() -> dict:
    return {
        "hotlines": services.hotlines(),
        "sessions": services.upcoming_sessions(utcnow(), limit=3),
    }


# --- demo data ------------------------------------------------------------------------

CATEGORIES = [
    ("labour", "劳动合同", "Labour contracts"),
    ("wages", "工资与社保", "Wages and social insurance"),
    ("resume", "复工复产", "Resuming work"),
    ("injury", "工伤", "Work injury"),
]
ITEMS = [
    {
        "category": "labour",
        "code": "labour-contract-review",
        "title": "劳动合同审查",
        "title_en": "Labour contract review",
        "description": (
            "律师审查您的劳动合同或补充协议，指出对您不利的条款、违法条款和需要补充的内容。"
        ),
        "prepare": "劳动合同（全部页，PDF 或照片）\n补充协议、员工手册中与您相关的部分",
        "sla_hours": 16,
        "fields": [
            {
                "name": "position",
                "label_zh": "岗位",
                "label_en": "Position",
                "type": "text",
                "required": True,
            },
            {
                "name": "monthly_salary",
                "label_zh": "约定月工资（元）",
                "label_en": "Agreed monthly salary (yuan)",
                "type": "number",
                "required": False,
            },
            {
                "name": "contract_start",
                "label_zh": "合同开始日期",
                "label_en": "Contract start",
                "type": "date",
                "required": False,
            },
        ],
        "lawyers": [],
    },
    {
        "category": "wages",
        "code": "unpaid-wages",
        "title": "欠薪追讨",
        "title_en": "Unpaid wages",
        "description": (
            "单位拖欠或克扣工资、停工期间工资支付有争议时，律师告诉您如何维权、如何申请劳动仲裁。"
        ),
        "prepare": "工资条或银行流水\n考勤记录、工作群聊天记录等能证明劳动关系的材料",
        "sla_hours": 8,
        "fields": [
            {
                "name": "amount_owed",
                "label_zh": "拖欠金额（元）",
                "label_en": "Amount owed (yuan)",
                "type": "number",
                "required": True,
            },
            {
                "name": "months_owed",
                "label_zh": "拖欠月数",
                "label_en": "Months unpaid",
                "type": "number",
                "required": False,
            },
            {
                "name": "last_paid",
                "label_zh": "最后一次发薪日期",
                "label_en": "Last paid on",
                "type": "date",
                "required": False,
            },
        ],
        "lawyers": [],
    },
    {
        "category": "wages",
        "code": "social-insurance",
        "title": "社会保险",
        "title_en": "Social insurance",
        "description": "社保断缴、补缴、阶段性减免政策、医疗期待遇等问题的解答。",
        "prepare": "社保缴费记录（可在社保 App 下载）",
        "sla_hours": 16,
        "fields": [
            {
                "name": "insured_city",
                "label_zh": "参保城市",
                "label_en": "City of insurance",
                "type": "text",
                "required": True,
            },
        ],
        "lawyers": [],
    },
    {
        "category": "resume",
        "code": "layoffs-resuming-work",
        "title": "裁员与复工",
        "title_en": "Layoffs and resuming work",
        "description": (
            "疫情期间的停工停产、延迟复工、降薪、裁员和解除"
            "劳动合同问题，律师帮您判断是否合法、如何应对。"
        ),
        "prepare": "单位的通知（书面或聊天截图）\n劳动合同",
        "sla_hours": 8,
        "fields": [
            {
                "name": "notice_date",
                "label_zh": "收到通知的日期",
                "label_en": "Notice received on",
                "type": "date",
                "required": False,
            },
        ],
        "lawyers": [],
    },
    {
        "category": "injury",
        "code": "work-injury",
        "title": "工伤认定与赔偿",
        "title_en": "Work injury",
        "description": "工伤认定申请、劳动能力鉴定、工伤保险待遇和单位赔偿的咨询。",
        "prepare": "病历和诊断证明\n事故经过说明\n劳动合同或劳动关系证明",
        "sla_hours": 8,
        "fields": [
            {
                "name": "injury_date",
                "label_zh": "受伤日期",
                "label_en": "Date of the injury",
                "type": "date",
                "required": True,
            },
            {
                "name": "what_happened",
                "label_zh": "事故经过",
                "label_en": "What happened",
                "type": "textarea",
                "required": False,
            },
        ],
        "lawyers": [1, 2],
    },
    {
        "category": "resume",
        "code": "enterprise-compliance",
        "title": "企业复工合规检查",
        "title_en": "Enterprise return-to-work compliance check",
        "description": (
            "面向园区企业：律师检查复工复产方案中的用工安排、防疫措施、工资支付和休假安排是否合规。"
        ),
        "prepare": "复工方案\n员工花名册（可去除个人信息）\n拟发布的员工通知",
        "sla_hours": 24,
        "fields": [
            {
                "name": "headcount",
                "label_zh": "员工人数",
                "label_en": "Employees",
                "type": "number",
                "required": True,
            },
            {
                "name": "industry",
                "label_zh": "所属行业",
                "label_en": "Industry",
                "type": "text",
                "required": True,
            },
            {
                "name": "planned_date",
                "label_zh": "计划复工日期",
                "label_en": "Planned return date",
                "type": "date",
                "required": False,
            },
        ],
        "lawyers": [0, 1],
    },
]
HOTLINES = [
    ("职工维权服务热线", "12351", "工作日 9:00–17:00"),
    ("公共法律服务热线", "12348", "每天 24 小时"),
]


def _local(days: float, hour: int = 10, minute: int = 0) -> datetime:
    """A demo time: today (Shanghai) + ``days`` at hour:minute, as UTC."""
    today = utcnow().astimezone(SHANGHAI).date()
    local = datetime.combine(today + timedelta(days=days), datetime.min.time(), tzinfo=SHANGHAI)
    return local.replace(hour=hour, minute=minute).astimezone(UTC)


@demo_seeder("legal", 50)
def seed_demo(session: so.Session, users) -> None:
    admin = users.admin
    categories: dict[str, Category] = {}
    for position, (key, name, name_en) in enumerate(CATEGORIES):
        category = session.scalar(sa.select(Category).where(Category.name == name))
        if category is None:
            category = services.save_category(
                admin, None, name=name, name_en=name_en, position=position
            )
        categories[key] = category
    items: dict[str, MenuItem] = {}
    for position, spec in enumerate(ITEMS):
        item = session.scalar(sa.select(MenuItem).where(MenuItem.code == spec["code"]))
        if item is None:
            item = services.save_item(
                admin,
                None,
                category_id=categories[spec["category"]].id,
                code=spec["code"],
                title=spec["title"],
                title_en=spec["title_en"],
                description=spec["description"],
                prepare=spec["prepare"],
                sla_hours=spec["sla_hours"],
                fields=spec["fields"],
                lawyer_ids=[users.lawyers[i].id for i in spec["lawyers"]],
                position=position,
            )
        items[spec["code"]] = item
    for name, number, hours in HOTLINES:
        if session.scalar(sa.select(Hotline.id).where(Hotline.name == name)) is None:
            services.save_hotline(admin, None, name=name, number=number, hours=hours, active=True)
    sessions = [
        ("复工复产中的劳动用工法律问题直播答疑", 0, 2, 15),
        ("疫情期间工资支付与休假政策解读", 1, 5, 19),
        ("工伤认定与工伤保险待遇", 2, 9, 15),
    ]
    for title, lawyer, days, hour in sessions:
        if session.scalar(
            sa.select(ConsultationSession.id).where(ConsultationSession.title == title)
        ):
            continue
        services.save_session(
            admin,
            None,
            title=title,
            speaker=users.lawyers[lawyer].name,
            starts_at=_local(days, hour),
            duration_minutes=60,
            venue="平台直播间（视频直播，可在线提问）",
            description="律师在线讲解并回答职工和企业的提问。",
        )
    members = users.members
    already = session.scalar(
        sa.select(sa.func.count(LegalRequest.id)).where(
            LegalRequest.requester_id.in_([m.id for m in members])
        )
    )
    if already:
        return
    _seed_requests(users, items)
    session.flush()


def _seed_requests(users, items: dict[str, MenuItem]) -> None:
    one, two, three = users.lawyers[:3]
    m = users.members
    services.add_client(users.admin, three, "华信建筑劳务有限公司")

    def submit(member, code, question, values, days, **extra):
        return services.submit_request(
            member,
            items[code],
            question=question,
            values=values,
            now=_local(days, 10) if days else utcnow() - timedelta(hours=1),
            **extra,
        )

    # submitted: waiting in the queue (one of them names lawyer three's client)
    submit(
        m[0],
        "unpaid-wages",
        "公司从二月起停工，至今没有发工资，也没有说明何时复工。我该怎么要回工资？",
        {"amount_owed": "12000", "months_owed": "2"},
        -1,
        other_party="华信建筑劳务有限公司",
    )
    submit(
        m[1],
        "labour-contract-review",
        "复工后公司让我重新签一份劳动合同，试用期又从头算，这样合法吗？",
        {"position": "测试工程师", "monthly_salary": "9000"},
        0,
    )
    # assigned
    r = submit(
        m[2],
        "social-insurance",
        "公司说疫情期间社保可以缓缴，会影响我看病报销吗？",
        {"insured_city": "北京"},
        -2,
    )
    services.claim(one, r, now=_local(-2, 11))
    # waiting for the member
    r = submit(
        m[3],
        "work-injury",
        "复工第一天在车间搬货时扭伤了腰，公司说不算工伤。",
        {"injury_date": _local(-6).date().isoformat()},
        -5,
    )
    services.claim(two, r, now=_local(-5, 14))
    services.ask_for_information(
        two,
        r,
        "请补充：受伤时是否有同事在场？有没有及时就医并保留病历？公司是否为您缴纳了工伤保险？",
        now=_local(-5, 16),
    )
    # answered
    r = submit(
        m[4],
        "layoffs-resuming-work",
        "公司通知延迟复工一个月，这期间只发最低工资的七成，合理吗？",
        {},
        -4,
    )
    services.claim(one, r, now=_local(-4, 11))
    services.answer(
        one,
        r,
        "停工停产在一个工资支付周期内的，单位应按劳动合同约定支付工资；超过一个工资支付周期的，"
        "若您提供了正常劳动，工资不得低于当地最低工资标准；未提供正常劳动的，单位应发放生活费，"
        "标准按当地规定执行。建议先了解公司停工的起始时间并保留通知。",
        now=_local(-4, 15),
    )
    # closed and rated, on behalf of an enterprise
    r = submit(
        m[5],
        "enterprise-compliance",
        "我们公司准备下周复工，请帮忙检查复工方案中的排班和防疫安排。",
        {"headcount": "120", "industry": "软件和信息技术服务"},
        -7,
        enterprise_name=m[5].enterprise.name if m[5].enterprise else "中关村软件园云计算有限公司",
    )
    services.claim(two, r, now=_local(-7, 13))
    services.answer(
        two,
        r,
        "方案总体合规。请注意：轮班制需经民主程序；延长工作时间须支付加班费；"
        "员工体温异常的处理流程需要书面化并告知员工。",
        now=_local(-6, 10),
    )
    services.rate(m[5], r, 5, "回复很及时，建议很具体。", now=_local(-6, 12))
    services.close(m[5], r, now=_local(-6, 12, 5))
    # a follow-up after an answer: back with the lawyer
    r = submit(
        m[6], "unpaid-wages", "离职时公司少结了半个月工资，怎么办？", {"amount_owed": "4500"}, -3
    )
    services.claim(three, r, now=_local(-3, 10, 30))
    services.answer(
        three,
        r,
        "可以先向公司书面催要，保留证据；仍不支付的，可向劳动监察大队投诉或申请劳动仲裁。",
        now=_local(-3, 14),
    )
    services.follow_up(m[6], r, "公司说要等下个月统一结算，我需要等吗？", now=_local(-2, 9, 30))

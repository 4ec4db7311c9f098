"""Bulk seeding at benchmark scale: members with points histories and a past, fast on
both engines.

Each member gets a points ledger and, with ``history``, what a year on the platform
leaves behind: a picked-up kit claim (with its notification, one in three unread, and
the staff's audit entry of the hand-over), a points donation (a real ledger debit that
consumed lots), a course enrolment, and one member in ten a legal request that a
lawyer answered. Every object of that past is closed or finished (kits unpublished
after their window, campaigns closed or fulfilled, courses archived), so the pages'
lists of current things keep their size, and every ``check-integrity`` rule holds.

Rows are streamed inside one transaction with ids assigned here: PostgreSQL takes
them through binary ``COPY … FROM STDIN`` (psycopg 3, on the SQLAlchemy connection's
own driver connection) with the loaded tables' foreign keys and secondary indexes
built again after the load, SQLite through the driver's ``executemany`` with a big
page cache. PostgreSQL's sequences are moved past the ids afterwards so the
application keeps inserting normally. Calling it again adds members and reuses the
past objects, adding to their counters.

100,000 members with history (1,000,000 ledger entries, ~2.9 million rows in all)
took 23–28 s on PostgreSQL and 37–40 s on SQLite on the 2-core bench machine
(without history and before COPY: 219 s and 55 s).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa

from memberplatform.audit.models import AuditEntry
from memberplatform.auth.models import User, UserRole, new_session_token
from memberplatform.core.masking import mask_name
from memberplatform.courses.models import Course, Enrolment, Lesson, LessonProgress
from memberplatform.donations.models import Campaign, Donation, Fulfilment
from memberplatform.donations.services import CERTIFICATE_ALPHABET
from memberplatform.kits.models import (
    CODE_ALPHABET,
    CODE_LENGTH,
    KitClaim,
    KitStock,
    KitType,
    PickupPoint,
    StockMove,
)
from memberplatform.legal.models import (
    Category,
    ItemLawyer,
    LegalRequest,
    MenuItem,
    RequestCounter,
    RequestEvent,
    RequestMessage,
)
from memberplatform.legal.sla import SHANGHAI, add_working_hours
from memberplatform.notifications.models import Notification
from memberplatform.points.models import LedgerEntry, LotUse, PointsAccount, PointsLot

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚"
PHONE_BASE = 15_000_000_000  # bench members: 150xxxxxxxx
HELPER_PHONE = {"staff": "14900000001", "lawyer": "14900000002"}  # only if the demo is missing
EARN = 10  # points per earned entry (and per lot)
POINTS_PER_UNIT = 10  # of the past campaigns
LEGAL_EVERY = 10  # one member in ten has a legal request

#: the past objects (names are unique in their tables; none is a demo or rush name)
PAST_KITS = ("压测往期·复工防护包", "压测往期·消毒用品包", "压测往期·抗原检测包")
PAST_CAMPAIGNS = (
    ("压测往期积分捐：为社区卫生服务中心捐赠医用口罩", "医用口罩", "只", "fulfilled"),
    ("压测往期积分捐：为环卫工人捐赠防护手套", "防护手套", "副", "fulfilled"),
    ("压测往期积分捐：为一线医护人员捐赠护手霜", "护手霜", "支", "closed"),
)
PAST_COURSES = (
    "压测往期课程：安全生产基础",
    "压测往期课程：职场心理健康",
    "压测往期课程：劳动合同常识",
)
LESSONS_PER_COURSE = 2
BENCH_CATEGORY, BENCH_ITEM = "压测往期咨询", "bench-past-consultation"
QUESTIONS = (
    "公司要求我签订新的劳动合同，试用期重新计算，这样合法吗？",
    "加班费一直没有按规定发放，我应该怎么维权？",
    "停工期间公司只发生活费，标准是多少？",
    "单位没有为我缴纳社保，离职时可以要求补缴吗？",
)
ANSWERS = (
    "同一用人单位与同一劳动者只能约定一次试用期；重新签订合同不得再次约定试用期。",
    "请保留考勤和工资记录，先与单位协商；协商不成可向劳动监察投诉或申请劳动仲裁。",
    "超过一个工资支付周期的停工停产，单位应按当地规定标准发放生活费。",
    "缴纳社会保险是单位的法定义务，可向社保经办机构投诉要求补缴。",
)


def bench_phone(index: int) -> str:
    return str(PHONE_BASE + index)


def bench_name(n: int) -> str:
    """The name of the ``n``-th member of one seeding call."""
    return SURNAMES[n % 20] + GIVEN[n * 7 % 20] + GIVEN[n % 20]


@functools.cache
def _code_space(base: int, length: int) -> tuple[int, int, int, int]:
    """(size, two multipliers coprime with it, the rotation's divisor) for _scramble."""
    size = base**length

    def coprime(fraction: float) -> int:
        multiplier = int(size * fraction) | 1  # neighbours land far apart
        while math.gcd(multiplier, size) != 1:
            multiplier += 2
        return multiplier

    return size, coprime(0.618), coprime(0.414), base ** (length // 2)


def _scramble(number: int, alphabet: str, length: int) -> str:
    """``number`` as ``length`` digits of ``alphabet`` after a permutation of all such
    codes (multiply, rotate the digits by half, multiply again): distinct numbers give
    distinct, random-looking codes (pickup codes, certificate numbers)."""
    base = len(alphabet)
    size, first, second, half = _code_space(base, length)
    value = (number * first + 7) % size
    high, low = divmod(value, half)
    value = ((low * (size // half) + high) * second + 3) % size
    out = []
    for _ in range(length):
        value, digit = divmod(value, base)
        out.append(alphabet[digit])
    return "".join(out)


class _Loader:
    """Streams rows into one table per call, on the connection's own transaction.

    Values come as the database stores them: naive UTC datetimes pass through
    :meth:`time` (SQLite keeps SQLAlchemy's text format), JSON as text."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"
        self.driver: Any = conn.connection.driver_connection

    def time(self, value: datetime) -> datetime | str:
        return value if self.pg else value.isoformat(" ", "microseconds")

    def load(self, table: sa.Table, columns: Sequence[str], rows: Iterable[tuple]) -> None:
        names = ", ".join(columns)
        if self.pg:
            # binary COPY with declared types: a quarter of the client's work of text COPY
            types = self._binary_types(table.name, columns)
            with (
                self.driver.cursor() as cursor,
                cursor.copy(f"COPY {table.name} ({names}) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * len(columns))
            insert = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"
            self.driver.executemany(insert, rows)

    def _binary_types(self, table: str, columns: Sequence[str]) -> list[str]:
        """The columns' types for binary COPY; json and varchar travel as text (their
        binary form is their text), so JSON comes as a string on both engines."""
        found = dict(
            self.conn.execute(
                sa.text(
                    "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
                    "WHERE attrelid = CAST(:table AS regclass) AND attnum > 0"
                ),
                {"table": table},
            ).all()
        )
        as_text = {"json", "character varying", "text"}
        return ["text" if found[name] in as_text else found[name] for name in columns]

    def next_id(self, table: sa.Table) -> int:
        return (self.conn.scalar(sa.select(sa.func.max(table.c.id))) or 0) + 1

    def insert(self, table: sa.Table, **values: Any) -> int:
        """One row through SQLAlchemy (the few parent rows), its new id."""
        return self.conn.scalar(table.insert().values(**values).returning(table.c.id))


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


def _spread(n: int, span: timedelta) -> timedelta:
    """A deterministic, well-spread offset inside ``span`` for member ``n``."""
    seconds = int(span.total_seconds())
    return timedelta(seconds=(n * 7919) % max(seconds, 1))


def seed_members(
    engine: sa.Engine,
    members: int,
    entries_each: int,
    password_hash: str,
    *,
    history: bool = True,
) -> dict[str, Any]:
    """Add ``members`` active members with ``entries_each`` ledger entries each and, with
    ``history``, their past claims, donations, enrolments and legal requests.

    With history (and ``entries_each`` ≥ 2) the last entry of each member is the debit
    of their donation, so the ledger still holds ``members * entries_each`` entries.
    """
    started = time.perf_counter()
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)  # naive UTC, as stored
    counts: dict[str, Any] = {"members": members}
    history = history and members > 0
    with engine.connect() as conn, _bulk_session(conn), conn.begin():
        load = _Loader(conn)
        # helpers first: a user created later would take a bench member's id
        staff = _role_user(load, "staff", now) if history else None
        lawyers = _lawyers(load, now) if history else []
        with _indexes_built_after(conn):
            first_user = _write_members(
                load, members, entries_each, password_hash, now, counts, staff=staff
            )
            if staff is not None:
                _write_claims(load, first_user, members, now, counts, staff=staff)
                _write_enrolments(load, first_user, members, now, counts)
                _write_legal(load, first_user, members, now, counts, lawyers=lawyers)
        if load.pg:
            _move_sequences(conn)
    _analyze(engine)
    counts.setdefault("claims", 0)
    counts.setdefault("enrolments", 0)
    counts.setdefault("legal_requests", 0)
    counts["first_user_id"] = first_user
    counts["seconds"] = round(time.perf_counter() - started, 1)
    return counts


@contextlib.contextmanager
def _bulk_session(conn: sa.Connection) -> Iterator[None]:
    """SQLite: a page cache big enough for the indexes being filled, on this
    connection only, restored afterwards (it goes back to the pool)."""
    if conn.dialect.name != "sqlite":
        yield
        return
    driver = conn.connection.driver_connection
    before = driver.execute("PRAGMA cache_size").fetchone()[0]
    driver.execute("PRAGMA cache_size=-262144")  # 256 MiB
    try:
        yield
    finally:
        driver.execute(f"PRAGMA cache_size={int(before)}")


@contextlib.contextmanager
def _indexes_built_after(conn: sa.Connection) -> Iterator[None]:
    """PostgreSQL: drop the foreign keys and secondary indexes of the tables loaded
    here, and build them again after the load, in the same transaction.

    Checking foreign keys and updating every index row by row is what made COPY slow;
    building each index over the whole table and checking each foreign key with one
    join afterwards is twice as fast, and checks the same rules. (On failure the
    transaction's rollback restores them.)"""
    if conn.dialect.name != "postgresql":
        yield
        return
    conn.execute(sa.text("SET LOCAL lock_timeout = '60s'"))  # fail, never hang, if in use
    conn.execute(sa.text("SET LOCAL maintenance_work_mem = '256MB'"))
    rebuild: list[str] = []
    for model in LOADED:
        table = model.__tablename__
        # indexes that back no constraint, unique constraints no foreign key relies on,
        # and the table's foreign keys, in the order they are built again; the
        # primary key stays
        rows = conn.execute(
            sa.text(
                """
                SELECT 0 AS step, index.relname AS name, pg_get_indexdef(i.indexrelid)
                FROM pg_index i JOIN pg_class index ON index.oid = i.indexrelid
                WHERE i.indrelid = CAST(:table AS regclass)
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
                UNION ALL
                SELECT 1, conname, pg_get_constraintdef(c.oid) FROM pg_constraint c
                WHERE conrelid = CAST(:table AS regclass) AND contype = 'u'
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint f
                                  WHERE f.contype = 'f' AND f.conindid = c.conindid)
                UNION ALL
                SELECT 2, conname, pg_get_constraintdef(oid)
                FROM pg_constraint WHERE conrelid = CAST(:table AS regclass) AND contype = 'f'
                ORDER BY 1, 2
                """
            ),
            {"table": table},
        ).all()
        for step, name, definition in rows:
            if step == 0:
                conn.execute(sa.text(f'DROP INDEX "{name}"'))
                rebuild.append(definition)
            else:
                conn.execute(sa.text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
                rebuild.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    yield
    for statement in rebuild:
        conn.execute(sa.text(statement))


# --- members, ledgers, donations ------------------------------------------------------


def _write_members(
    load: _Loader,
    members: int,
    entries_each: int,
    password_hash: str,
    now: datetime,
    counts: dict[str, Any],
    *,
    staff: int | None,
) -> int:
    """Users, roles, accounts, the ledger and its lots. With history (``staff`` given,
    who recorded the past campaigns) a member's last entry is their donation's debit,
    taken from their first lots."""
    first_user = load.next_id(User.__table__)
    first_account = load.next_id(PointsAccount.__table__)
    first_entry = load.next_id(LedgerEntry.__table__)
    first_lot = load.next_id(PointsLot.__table__)
    donating = staff is not None and entries_each >= 2
    earns = entries_each - 1 if donating else entries_each
    most_units = min(3, earns)
    expiry = datetime(now.year + 1, 12, 31, 16, 0)  # end of next year, Asia/Shanghai

    def units(n: int) -> int:
        return 1 + (n // len(PAST_CAMPAIGNS)) % most_units

    # A year of earning, well before the past campaigns, kits and courses: entry k at
    # its day plus a minute of the day that depends on the member (a table: a million
    # timestamps computed one by one cost seconds).
    earned_at = [
        [
            load.time(now - timedelta(days=400 - 270 * k / max(earns, 1), minutes=-minute))
            for minute in range(1440)
        ]
        for k in range(earns)
    ]

    t = load.time

    def joined(n: int) -> datetime:
        return now - timedelta(days=500 + n % 365)

    def users() -> Iterator[tuple]:
        for n in range(members):
            uid = first_user + n
            created = joined(n)
            yield (
                uid,
                bench_phone(uid),
                bench_name(n),
                password_hash,
                "active",
                f"B{uid:07d}",
                f"bench{uid:027d}",
                t(created),
                t(created + timedelta(days=1)),
            )

    load.load(
        User.__table__,
        (
            "id",
            "phone",
            "name",
            "password_hash",
            "status",
            "member_no",
            "session_token",
            "created_at",
            "activated_at",
        ),
        users(),
    )
    load.load(
        UserRole.__table__,
        ("user_id", "role"),
        ((first_user + n, "member") for n in range(members)),
    )

    def balance(n: int) -> int:
        return EARN * earns - (units(n) * POINTS_PER_UNIT if donating else 0)

    load.load(
        PointsAccount.__table__,
        ("id", "user_id", "balance", "created_at"),
        ((first_account + n, first_user + n, balance(n), t(joined(n))) for n in range(members)),
    )

    campaigns: list[tuple[int, datetime]] = []
    if donating:
        campaigns = _past_campaigns(load, [units(n) for n in range(members)], now, staff or 0)
    first_donation = load.next_id(Donation.__table__)

    def entries() -> Iterator[tuple]:
        entry_id = first_entry
        for n in range(members):
            account = first_account + n
            minute = n * 7919 % 1440
            for k in range(earns):
                yield (
                    entry_id,
                    account,
                    EARN,
                    EARN * (k + 1),
                    "earn",
                    "grant",
                    None,
                    None,
                    f"bench:{account}:{k}",
                    "bench",
                    earned_at[k][minute],
                )
                entry_id += 1
            if donating:
                opens = campaigns[n % len(PAST_CAMPAIGNS)][1]
                cost = units(n) * POINTS_PER_UNIT
                yield (
                    entry_id,
                    account,
                    -cost,
                    EARN * earns - cost,
                    "spend",
                    "donation",
                    "donation",
                    first_donation + n,
                    f"donation:bench-donation-{first_user + n}",
                    None,
                    t(opens + _spread(n, timedelta(days=20))),
                )
                entry_id += 1

    load.load(
        LedgerEntry.__table__,
        (
            "id",
            "account_id",
            "amount",
            "balance_after",
            "kind",
            "reason",
            "ref_type",
            "ref_id",
            "idempotency_key",
            "note",
            "created_at",
        ),
        entries(),
    )
    stride = earns + (1 if donating else 0)
    lots_expire = t(expiry)

    def lots() -> Iterator[tuple]:
        for n in range(members):
            # a donation consumed the first lots (equal expiry: the lowest ids first)
            spent = units(n) * POINTS_PER_UNIT if donating else 0
            for k in range(earns):
                take = min(EARN, spent)
                spent -= take
                yield (
                    first_lot + n * earns + k,
                    first_account + n,
                    first_entry + n * stride + k,
                    EARN,
                    EARN - take,
                    lots_expire,
                )

    load.load(
        PointsLot.__table__,
        ("id", "account_id", "entry_id", "amount", "remaining", "expires_at"),
        lots(),
    )
    counts["ledger_entries"] = members * stride
    counts["donations"] = 0
    if not donating:
        return first_user

    first_use = load.next_id(LotUse.__table__)  # never inside a generator: COPY is running

    def uses() -> Iterator[tuple]:
        use_id = first_use
        for n in range(members):
            spent = units(n) * POINTS_PER_UNIT
            debit = first_entry + n * stride + earns
            for k in range(earns):
                if spent <= 0:
                    break
                take = min(EARN, spent)
                spent -= take
                yield (use_id, debit, first_lot + n * earns + k, take)
                use_id += 1

    load.load(LotUse.__table__, ("id", "entry_id", "lot_id", "amount"), uses())

    def donations() -> Iterator[tuple]:
        for n in range(members):
            uid = first_user + n
            campaign_id, opens = campaigns[n % len(PAST_CAMPAIGNS)]
            at = opens + _spread(n, timedelta(days=20))
            yield (
                first_donation + n,
                campaign_id,
                uid,
                units(n),
                units(n) * POINTS_PER_UNIT,
                mask_name(bench_name(n)) if n % 4 != 3 else None,  # one in four anonymous
                f"bench-donation-{uid}",
                f"JZ{at.year}-" + _scramble(first_donation + n, CERTIFICATE_ALPHABET, 10),
                first_entry + n * stride + earns,
                t(at),
            )

    load.load(
        Donation.__table__,
        (
            "id",
            "campaign_id",
            "user_id",
            "units",
            "points",
            "wall_name",
            "idempotency_key",
            "certificate_no",
            "ledger_entry_id",
            "created_at",
        ),
        donations(),
    )
    counts["donations"] = members
    return first_user


def _past_campaigns(
    load: _Loader, units: list[int], now: datetime, staff: int
) -> list[tuple[int, datetime]]:
    """The past campaigns (created, or found from an earlier call) with their counters
    already raised by the donations about to be written: (id, opening time) each, in
    the order of PAST_CAMPAIGNS (member ``n`` gives to campaign ``n % 3``)."""
    conn, table = load.conn, Campaign.__table__
    added = Counter()
    for n, u in enumerate(units):
        added[n % len(PAST_CAMPAIGNS)] += u
    given = Counter(n % len(PAST_CAMPAIGNS) for n in range(len(units)))
    out = []
    for c, (title, item, unit_label, status) in enumerate(PAST_CAMPAIGNS):
        opens = now - timedelta(days=120 - 10 * c)
        closes = opens + timedelta(days=21)
        units_in, donations_in = added[c], given[c]
        found = conn.scalar(sa.select(table.c.id).where(table.c.title == title))
        fulfilled = units_in if status == "fulfilled" else 0
        if found is None and not donations_in:  # fewer members than campaigns
            out.append((0, opens))
            continue
        if found is None:
            found = load.insert(
                table,
                title=title,
                story="工会往期积分捐活动（压测数据）。",
                beneficiary_name="科学城社区卫生服务中心",
                beneficiary_type="community",
                item_name=item,
                unit_label=unit_label,
                points_per_unit=POINTS_PER_UNIT,
                target_units=units_in,
                opens_at=_aware(opens),
                closes_at=_aware(closes),
                status=status,
                pledged_units=units_in,
                donation_count=donations_in,
                donor_count=donations_in,  # one donation per member
                fulfilled_units=fulfilled,
                created_by=staff,
                created_at=_aware(opens - timedelta(days=3)),
                updated_at=_aware(closes),
                closed_at=_aware(closes),
                fulfilled_at=_aware(closes + timedelta(days=7)) if fulfilled else None,
            )
        elif donations_in:
            conn.execute(
                table.update()
                .where(table.c.id == found)
                .values(
                    target_units=table.c.target_units + units_in,
                    pledged_units=table.c.pledged_units + units_in,
                    donation_count=table.c.donation_count + donations_in,
                    donor_count=table.c.donor_count + donations_in,
                    fulfilled_units=table.c.fulfilled_units + fulfilled,
                )
            )
        if fulfilled:
            load.insert(
                Fulfilment.__table__,
                campaign_id=found,
                quantity=fulfilled,
                delivered_on=(closes + timedelta(days=5)).date(),
                note=f"{fulfilled} 件物资已由工会统一采购并送达（压测数据）。",
                recorded_by=staff,
                created_at=_aware(closes + timedelta(days=5)),
            )
        out.append((found, opens))
    return out


def _role_user(load: _Loader, role: str, now: datetime) -> int:
    """The first user with ``role`` (the demo's), or a helper account created once."""
    conn = load.conn
    found = conn.scalar(sa.select(sa.func.min(UserRole.user_id)).where(UserRole.role == role))
    if found is not None:
        return found
    user_id = load.insert(
        User.__table__,
        phone=HELPER_PHONE[role],
        name="压测" + ("干事" if role == "staff" else "律师"),
        password_hash=None,
        status="active",
        session_token=new_session_token(),
        created_at=_aware(now - timedelta(days=900)),
    )
    conn.execute(UserRole.__table__.insert().values(user_id=user_id, role=role))
    return user_id


# --- kit claims -----------------------------------------------------------------------


def _write_claims(
    load: _Loader,
    first_user: int,
    members: int,
    now: datetime,
    counts: dict[str, Any],
    *,
    staff: int,
) -> None:
    """One picked-up claim per member of a past (closed, unpublished) kit; stock rows
    received what was handed out plus a few left over, recorded as stock moves."""
    conn = load.conn
    points = list(
        conn.scalars(
            sa.select(PickupPoint.id)
            .where(PickupPoint.active.is_(True))
            .order_by(PickupPoint.id)
            .limit(2)
        )
    )
    if not points:
        points = [
            load.insert(
                PickupPoint.__table__,
                name=f"压测往期领取点 {i}",
                address="科学城服务中心",
                hours="9:00-17:00",
                active=True,
                created_at=_aware(now - timedelta(days=900)),
            )
            for i in (1, 2)
        ]
    kits: list[tuple[int, datetime]] = []
    for k, name in enumerate(PAST_KITS):
        opens = now - timedelta(days=100 - 15 * k)
        found = conn.scalar(sa.select(KitType.id).where(KitType.name == name))
        if found is None:
            found = load.insert(
                KitType.__table__,
                name=name,
                description="往期发放的防护物资（压测数据）。",
                opens_at=_aware(opens),
                closes_at=_aware(opens + timedelta(days=14)),
                points_cost=0,
                delivery_allowed=False,
                active=False,  # past: off the members' kit list
                created_at=_aware(opens - timedelta(days=3)),
            )
        kits.append((found, opens))

    def place(n: int) -> tuple[int, int]:
        return n % len(kits), (n // len(kits)) % len(points)

    handed = Counter(place(n) for n in range(members))
    for (k, p), n_claims in sorted(handed.items()):
        kit_id, opens = kits[k]
        delta = n_claims + n_claims // 20  # a few left on the shelf
        stock = conn.scalar(
            sa.select(KitStock.id).where(
                KitStock.kit_type_id == kit_id, KitStock.point_id == points[p]
            )
        )
        if stock is None:
            stock = load.insert(
                KitStock.__table__,
                kit_type_id=kit_id,
                point_id=points[p],
                received=0,
                reserved=0,
                picked_up=0,
                available=0,
            )
        table = KitStock.__table__
        conn.execute(
            table.update()
            .where(table.c.id == stock)
            .values(
                received=table.c.received + delta,
                picked_up=table.c.picked_up + n_claims,
                available=table.c.available + (delta - n_claims),
            )
        )
        load.insert(
            StockMove.__table__,
            stock_id=stock,
            delta=delta,
            reason="往期物资到货（压测数据）",
            actor_id=staff,
            created_at=_aware(opens - timedelta(days=1)),
        )

    first_claim = load.next_id(KitClaim.__table__)
    t = load.time

    def claim(n: int) -> Claimed:
        k, p = place(n)
        kit_id, opens = kits[k]
        at = opens + _spread(n, timedelta(days=10))
        return Claimed(
            first_claim + n,
            kit_id,
            points[p],
            first_user + n,
            _scramble(first_claim + n, CODE_ALPHABET, CODE_LENGTH),
            at,
            at + timedelta(days=3),
            at + timedelta(hours=2 + n % 40),
        )

    def claims() -> Iterator[tuple]:
        for n in range(members):
            c = claim(n)
            yield (
                c.id,
                c.kit_id,
                c.point_id,
                c.user_id,
                "picked_up",
                "pickup",
                c.code,
                0,
                t(c.at),
                t(c.expires_at),
                t(c.picked_up_at),
                staff,
            )

    load.load(
        KitClaim.__table__,
        (
            "id",
            "kit_type_id",
            "point_id",
            "user_id",
            "status",
            "mode",
            "pickup_code",
            "points_spent",
            "created_at",
            "expires_at",
            "picked_up_at",
            "picked_up_by",
        ),
        claims(),
    )
    counts["claims"] = members
    _write_claim_traces(load, members, claim, staff, counts)


class Claimed(NamedTuple):
    id: int
    kit_id: int
    point_id: int
    user_id: int
    code: str
    at: datetime
    expires_at: datetime
    picked_up_at: datetime


def _write_claim_traces(
    load: _Loader,
    members: int,
    claim: Callable[[int], Claimed],
    staff: int,
    counts: dict[str, Any],
) -> None:
    """What each claim left behind, as the kits service leaves it: the member's
    notification of the reservation (one in three never opened, so the notifications
    badge counts over a table of the scale's size) and the staff's audit entry of the
    hand-over."""
    conn = load.conn
    kit_names = dict(conn.execute(sa.select(KitType.id, KitType.name)).all())
    point_names = dict(conn.execute(sa.select(PickupPoint.id, PickupPoint.name)).all())
    first_notice = load.next_id(Notification.__table__)
    first_entry = load.next_id(AuditEntry.__table__)
    t = load.time

    def notices() -> Iterator[tuple]:
        for n in range(members):
            c = claim(n)
            until = c.expires_at.replace(tzinfo=UTC).astimezone(SHANGHAI)
            params = {
                "kit": kit_names[c.kit_id],
                "point": point_names[c.point_id],
                "code": c.code,
                "until": until.strftime("%Y-%m-%d %H:%M"),
            }
            yield (
                first_notice + n,
                c.user_id,
                "kits.claimed",
                json.dumps(params),
                f"/kits/claims/{c.id}",
                t(c.at),
                None if n % 3 == 0 else t(c.at + timedelta(hours=1)),
            )

    load.load(
        Notification.__table__,
        ("id", "user_id", "kind", "params", "link", "created_at", "read_at"),
        notices(),
    )

    def entries() -> Iterator[tuple]:
        for n in range(members):
            c = claim(n)
            yield (
                first_entry + n,
                staff,
                "kits.claim.picked_up",
                "kit_claim",
                str(c.id),
                json.dumps({"code": c.code}),
                "127.0.0.1",
                t(c.picked_up_at),
            )

    load.load(
        AuditEntry.__table__,
        ("id", "actor_id", "action", "object_type", "object_id", "changes", "ip", "created_at"),
        entries(),
    )
    counts["notifications"] = members
    counts["audit_entries"] = members


# --- course enrolments ----------------------------------------------------------------


def _write_enrolments(
    load: _Loader, first_user: int, members: int, now: datetime, counts: dict[str, Any]
) -> None:
    """One enrolment per member in a past (archived, unlimited) course; three in four
    completed it (every lesson done), the others did the first lesson."""
    conn = load.conn
    table = Course.__table__
    courses: list[tuple[int, datetime, list[int]]] = []
    joined = Counter(n % len(PAST_COURSES) for n in range(members))
    for q, title in enumerate(PAST_COURSES):
        opens = now - timedelta(days=200 - 20 * q)
        found = conn.scalar(sa.select(table.c.id).where(table.c.title == title))
        if found is None:
            found = load.insert(
                table,
                title=title,
                teacher="科学城职工学校",
                description="往期线上课程（压测数据）。",
                category="往期课程",
                status="archived",
                enrol_opens_at=_aware(opens),
                enrol_closes_at=_aware(opens + timedelta(days=14)),
                capacity=None,
                enrolled_count=joined[q],
                waitlist_counter=0,
                points_cost=0,
                points_reward=0,  # no completion entries: the ledgers keep their size
                created_at=_aware(opens - timedelta(days=7)),
                updated_at=_aware(opens - timedelta(days=7)),
            )
            for position in range(1, LESSONS_PER_COURSE + 1):
                load.insert(
                    Lesson.__table__,
                    course_id=found,
                    position=position,
                    title=f"第 {position} 课",
                    body="课程讲义（压测数据）。",
                    created_at=_aware(opens - timedelta(days=7)),
                )
        else:
            conn.execute(
                table.update()
                .where(table.c.id == found)
                .values(enrolled_count=table.c.enrolled_count + joined[q])
            )
        lessons = list(
            conn.scalars(
                sa.select(Lesson.id).where(Lesson.course_id == found).order_by(Lesson.position)
            )
        )
        courses.append((found, opens, lessons))

    first_enrolment = load.next_id(Enrolment.__table__)
    t = load.time

    def when(n: int) -> tuple[datetime, datetime | None]:
        _, opens, _ = courses[n % len(courses)]
        at = opens + _spread(n, timedelta(days=14))
        done = at + timedelta(days=20 + n % 10) if n % 4 != 3 else None
        return at, done

    def enrolments() -> Iterator[tuple]:
        for n in range(members):
            course_id = courses[n % len(courses)][0]
            at, done = when(n)
            eid = first_enrolment + n
            yield (
                eid,
                course_id,
                first_user + n,
                "enrolled",
                1,
                0,
                t(at),
                t(at),
                t(done) if done else None,
                f"{(eid * 0x9E3779B97F4A7C15) % 2**64:016x}" if done else None,
            )

    load.load(
        Enrolment.__table__,
        (
            "id",
            "course_id",
            "user_id",
            "status",
            "attempt",
            "fee_paid",
            "joined_at",
            "enrolled_at",
            "completed_at",
            "certificate_code",
        ),
        enrolments(),
    )

    first_progress = load.next_id(LessonProgress.__table__)

    def progress() -> Iterator[tuple]:
        progress_id = first_progress
        for n in range(members):
            lessons = courses[n % len(courses)][2]
            at, done = when(n)
            for i, lesson_id in enumerate(lessons if done else lessons[:1]):
                finished = done if done and i == len(lessons) - 1 else at + timedelta(days=7)
                yield (progress_id, first_enrolment + n, lesson_id, t(finished))
                progress_id += 1

    load.load(LessonProgress.__table__, ("id", "enrolment_id", "lesson_id", "done_at"), progress())
    counts["enrolments"] = members


# --- legal requests -------------------------------------------------------------------


def _lawyers(load: _Loader, now: datetime) -> list[int]:
    """Every lawyer (the demo's three), or a helper lawyer created once."""
    return list(
        load.conn.scalars(
            sa.select(UserRole.user_id).where(UserRole.role == "lawyer").order_by(UserRole.user_id)
        )
    ) or [_role_user(load, "lawyer", now)]


def _legal_items(load: _Loader, lawyers: list[int]) -> list[tuple[int, int, list[dict], list[int]]]:
    """(item id, SLA hours, field definitions, lawyers who may take it) of the menu,
    or of one bench item when there is no menu."""
    conn = load.conn
    items = conn.execute(
        sa.select(MenuItem.id, MenuItem.sla_hours, MenuItem.fields)
        .where(MenuItem.status == "active")
        .order_by(MenuItem.position, MenuItem.id)
    ).all()
    if not items:
        category = conn.scalar(sa.select(Category.id).where(Category.name == BENCH_CATEGORY))
        if category is None:
            category = load.insert(Category.__table__, name=BENCH_CATEGORY, position=99)
        item = load.insert(
            MenuItem.__table__,
            category_id=category,
            code=BENCH_ITEM,
            title="往期法律咨询",
            description="往期法律咨询（压测数据）。",
            prepare="",
            sla_hours=16,
            fields=[],
            status="active",
            position=99,
        )
        items = [(item, 16, [])]
    allowed: dict[int, list[int]] = {}
    for item_id, lawyer_id in conn.execute(sa.select(ItemLawyer.item_id, ItemLawyer.lawyer_id)):
        allowed.setdefault(item_id, []).append(lawyer_id)
    return [
        (item_id, sla, fields or [], sorted(allowed.get(item_id) or lawyers))
        for item_id, sla, fields in items
    ]


def _field_values(fields: list[dict], day: date) -> dict[str, str]:
    """Plausible answers for an item's required fields."""
    sample = {"text": "职员", "textarea": "详见问题描述。", "number": "8000"}
    return {
        spec["name"]: sample.get(spec.get("type", "text"), day.isoformat())
        for spec in fields
        if spec.get("required") and spec.get("name")
    }


def _write_legal(
    load: _Loader,
    first_user: int,
    members: int,
    now: datetime,
    counts: dict[str, Any],
    *,
    lawyers: list[int],
) -> None:
    """One member in ten asked a lawyer: answered, and two in three of them closed by
    the member (half of those rated). Numbers continue the yearly counters; the trail
    is the chain the services write (submit, claim, answer[, rate][, close])."""
    conn = load.conn
    askers = range(0, members, LEGAL_EVERY)
    total = len(askers)
    if not total:
        counts["legal_requests"] = 0
        return
    items = _legal_items(load, lawyers)
    counters = dict(conn.execute(sa.select(RequestCounter.year, RequestCounter.last)).all())
    last = dict(counters)
    first_request = load.next_id(LegalRequest.__table__)
    first_message = load.next_id(RequestMessage.__table__)
    first_event = load.next_id(RequestEvent.__table__)
    start, span = now - timedelta(days=330), timedelta(days=290)
    requests, messages, events = [], [], []
    t = load.time
    event_id = first_event
    for i, n in enumerate(askers):
        rid, member = first_request + i, first_user + n
        item_id, sla, fields, lawyers = items[i % len(items)]
        lawyer = lawyers[i % len(lawyers)]
        created = start + span * i / total
        year = _aware(created).astimezone(SHANGHAI).year
        last[year] = last.get(year, 0) + 1
        number = f"FL-{year}-{last[year]:06d}"
        assigned = created + timedelta(hours=1)
        answered = created + timedelta(hours=5, minutes=i % 60)
        closed = answered + timedelta(days=2) if i % 3 != 2 else None
        rating = 4 + i % 2 if closed and i % 2 == 0 else None
        question, reply = QUESTIONS[i % len(QUESTIONS)], ANSWERS[i % len(ANSWERS)]
        requests.append(
            (
                rid,
                number,
                item_id,
                member,
                lawyer,
                "closed" if closed else "answered",
                question,
                json.dumps(_field_values(fields, created.date()), ensure_ascii=False),
                t(created),
                t(add_working_hours(_aware(created), sla).replace(tzinfo=None)),
                t(assigned),
                t(answered),
                int((answered - created).total_seconds()),
                t(answered),
                t(closed) if closed else None,
                rating,
                t(answered + timedelta(days=1)) if rating else None,
            )
        )
        messages.append(
            (first_message + 2 * i, rid, member, "question", question, False, t(created))
        )
        messages.append(
            (first_message + 2 * i + 1, rid, lawyer, "answer", reply, False, t(answered))
        )
        trail = [
            (member, "submit", None, "submitted", {"number": number}, created),
            (lawyer, "claim", "submitted", "assigned", {"lawyer_id": lawyer}, assigned),
            (lawyer, "answer", "assigned", "answered", None, answered),
        ]
        if rating:
            trail.append(
                (
                    member,
                    "rate",
                    "answered",
                    "answered",
                    {"rating": rating},
                    answered + timedelta(days=1),
                )
            )
        if closed:
            trail.append((member, "close", "answered", "closed", None, closed))
        for actor, action, before, after, detail, at in trail:
            events.append(
                (
                    event_id,
                    rid,
                    actor,
                    action,
                    before,
                    after,
                    json.dumps(detail) if detail is not None else None,
                    t(at),
                )
            )
            event_id += 1
    load.load(
        LegalRequest.__table__,
        (
            "id",
            "number",
            "item_id",
            "requester_id",
            "lawyer_id",
            "status",
            "question",
            "field_values",
            "created_at",
            "due_at",
            "assigned_at",
            "first_response_at",
            "first_response_seconds",
            "answered_at",
            "closed_at",
            "rating",
            "rated_at",
        ),
        requests,
    )
    load.load(
        RequestMessage.__table__,
        ("id", "request_id", "author_id", "kind", "body", "internal", "created_at"),
        messages,
    )
    load.load(
        RequestEvent.__table__,
        (
            "id",
            "request_id",
            "actor_id",
            "action",
            "from_status",
            "to_status",
            "detail",
            "created_at",
        ),
        events,
    )
    table = RequestCounter.__table__
    for year, value in last.items():
        if year not in counters:
            conn.execute(table.insert().values(year=year, last=value))
        elif value != counters[year]:
            conn.execute(table.update().where(table.c.year == year).values(last=value))
    counts["legal_requests"] = total


# --- after the load -------------------------------------------------------------------

#: the tables streamed into (on PostgreSQL their foreign keys and secondary indexes are
#: rebuilt after the load, and the sequences of those with ids moved past them)
LOADED = (
    AuditEntry,
    Notification,
    User,
    UserRole,
    PointsAccount,
    LedgerEntry,
    PointsLot,
    LotUse,
    Donation,
    KitClaim,
    Enrolment,
    LessonProgress,
    LegalRequest,
    RequestMessage,
    RequestEvent,
)


def _move_sequences(conn: sa.Connection) -> None:
    for model in LOADED:
        table = model.__tablename__
        if "id" not in model.__table__.c:
            continue
        conn.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        )


def _analyze(engine: sa.Engine) -> None:
    if engine.dialect.name == "postgresql":
        # As after any bulk load: VACUUM sets the rows' hint bits and the visibility map
        # now, instead of the first page reads dirtying a million rows' pages during the
        # measurement; CHECKPOINT writes them out before it starts.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM (ANALYZE)"))
            with contextlib.suppress(sa.exc.DBAPIError):  # needs the checkpoint privilege
                conn.execute(sa.text("CHECKPOINT"))
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")

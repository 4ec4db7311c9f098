"""Objects the access matrix, XSS and upload tests need, made through each domain's services.

Every builder takes the :class:`~tests.security.world.World`, runs in its own committed
transaction and returns plain values (ids, numbers) for building URLs.
"""

from __future__ import annotations

import io
from datetime import timedelta

from werkzeug.datastructures import FileStorage

from memberplatform.db import utcnow

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def points(w, actor: str = "member", amount: int = 1000) -> None:
    from memberplatform.points import services

    def grant():
        services.grant(
            w.ids[actor],
            amount,
            actor=w.ids["admin"],
            note="security tests",
            idempotency_key=f"sec-grant-{w.seq()}",
        )

    w.run(grant)


def notification(w, owner: str = "member") -> int:
    from memberplatform.notifications.services import notify

    return w.run(lambda: notify(w.ids[owner], "account.welcome", {}, "/me").id)


# --- donations -------------------------------------------------------------------------


def campaign(w, status: str = "open", **fields) -> int:
    from memberplatform.donations import services

    def make():
        now = utcnow()
        values = dict(
            title=f"口罩捐赠 {w.seq()}",
            story="为医院捐赠口罩",
            beneficiary_name="普仁医院",
            beneficiary_type="hospital",
            item_name="口罩",
            unit_label="只",
            points_per_unit=10,
            target_units=1000,
            min_units=None,
            max_units=None,
            opens_at=now - timedelta(days=1),
            closes_at=now + timedelta(days=30),
        )
        values.update(fields)
        made = services.create_campaign(w.ids["staff"], **values)
        if status != "draft":
            services.change_status(made.id, "open", w.ids["staff"])
        return made.id

    return w.run(make)


def donation(w, owner: str = "member") -> dict:
    """An open campaign with one donation by ``owner``: ids and certificate number."""
    from memberplatform.donations import services

    points(w, owner, 100)
    campaign_id = campaign(w)

    def give():
        result = services.donate(
            w.ids[owner], campaign_id, 2, idempotency_key=f"sec-donation-{w.seq()}"
        )
        return {
            "campaign_id": campaign_id,
            "donation_id": result.donation.id,
            "number": result.donation.certificate_no,
        }

    return w.run(give)


def fulfilment(w, data: bytes = PDF, filename: str = "delivery.pdf") -> dict:
    """A campaign with a donation and a delivery record carrying an uploaded file."""
    from memberplatform.donations import services

    made = donation(w)

    def record():
        file = FileStorage(io.BytesIO(data), filename=filename, content_type="application/pdf")
        fulfilment = services.record_fulfilment(
            made["campaign_id"],
            w.ids["staff"],
            quantity=1,
            delivered_on=utcnow().date(),
            note="已送达",
            file=file,
        )
        return {**made, "fulfilment_id": fulfilment.id, "upload_id": fulfilment.upload_id}

    return w.run(record)

"""The admin is Sheaf's: its name in the header, and everything about people in one Accounts
section (Sheaf's users, allauth's email addresses and Django's groups), not in three."""

from __future__ import annotations

import re

from accounts.models import StripeEvent
from notifications.models import Event


def _section_titles(body: str) -> list[str]:
    return re.findall(r'<caption>\s*<a [^>]*class="section"[^>]*>([^<]+)</a>', body)


def test_the_admin_is_headed_sheaf_administration(staff_client):
    body = staff_client.get("/admin/").content.decode()

    assert re.search(r'<div id="site-name"><a href="/admin/">Sheaf administration</a>', body)
    assert "<title>Site administration | Sheaf administration</title>" in body
    assert "Django administration" not in body


def test_the_index_has_one_accounts_section_with_users_email_addresses_and_groups(staff_client):
    body = staff_client.get("/admin/").content.decode()

    titles = _section_titles(body)
    assert titles.count("Accounts") == 1
    assert "Authentication and Authorization" not in titles
    section = body[body.index('<div class="app-accounts module') :]
    section = section[: section.index("</table>")]
    for changelist in (
        "/admin/accounts/user/",
        "/admin/account/emailaddress/",
        "/admin/auth/group/",
    ):
        assert f'href="{changelist}"' in section
    # Sheaf's own block of the index is kept.
    assert 'id="sheaf-operations"' in body


def test_an_email_addresss_breadcrumbs_lead_to_the_same_accounts_section(staff_client):
    page = staff_client.get("/admin/account/emailaddress/").content.decode()
    assert '<a href="/admin/account/">Accounts</a>' in page

    body = staff_client.get("/admin/account/").content.decode()

    assert _section_titles(body) == ["Accounts"]
    for changelist in (
        "/admin/accounts/user/",
        "/admin/account/emailaddress/",
        "/admin/auth/group/",
    ):
        assert f'href="{changelist}"' in body


def test_the_batches_section_stays_its_own(staff_client):
    body = staff_client.get("/admin/batches/").content.decode()

    assert _section_titles(body) == ["Batches"]
    assert 'href="/admin/accounts/user/"' not in body.split('id="content-main"')[1]


def test_an_events_payload_shows_as_a_table(staff_client, alice):
    event = Event.objects.create(
        kind="batch.completed",
        key="batch:1:finish:1",
        user=alice,
        payload={"batch": {"name": "<b>March</b>", "counts": {"total": 2, "failed": 0}}},
    )

    body = staff_client.get(f"/admin/notifications/event/{event.pk}/change/").content.decode()

    assert '<th scope="row">name</th><td>&lt;b&gt;March&lt;/b&gt;</td>' in body
    assert '<th scope="row">total</th><td>2</td>' in body
    assert "<b>March</b>" not in body


def test_a_stripe_events_payload_shows_as_a_table(staff_client):
    event = StripeEvent.objects.create(
        event_id="evt_1",
        type="customer.subscription.updated",
        payload={"id": "evt_1", "data": {"object": {"id": "sub_1", "status": "active"}}},
    )

    body = staff_client.get(f"/admin/accounts/stripeevent/{event.pk}/change/").content.decode()

    assert '<th scope="row">status</th><td>active</td>' in body
    assert '"data": {' not in body

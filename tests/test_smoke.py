from __future__ import annotations


def test_home_page_renders_for_a_visitor(client, db):
    response = client.get("/")
    assert response.status_code == 200

"""Roles decide staff status, admin access and the navigation."""

from __future__ import annotations

import pytest
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from marketplace.api.permissions import IsAdmin, IsDonor, IsResearcher, IsReviewer
from marketplace.models import Role
from marketplace.services.accounts import user_set_role
from marketplace.web.navigation import nav_items
from tests.support.web import logged_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("role", "staff", "superuser"),
    [
        (Role.DONOR, False, False),
        (Role.RESEARCHER, False, False),
        (Role.REVIEWER, True, False),
        (Role.ADMIN, True, True),
    ],
)
def test_staff_flags_follow_role(make_user, role: Role, staff: bool, superuser: bool) -> None:
    user = make_user(role)
    assert (user.is_staff, user.is_superuser) == (staff, superuser)


def test_changing_role_updates_staff_flags(make_user) -> None:
    user = make_user(Role.ADMIN)
    user_set_role(user=user, role=Role.DONOR)
    user.refresh_from_db()
    assert not user.is_staff and not user.is_superuser


@pytest.mark.parametrize(
    ("role", "status"),
    [(Role.DONOR, 403), (Role.RESEARCHER, 403), (Role.REVIEWER, 200), (Role.ADMIN, 200)],
)
def test_only_staff_reach_the_django_admin(make_user, role: Role, status: int) -> None:
    response = logged_in(make_user(role)).get("/admin/")
    assert response.status_code == status
    if status == 403:  # a plain page, not a loop through the sign-in
        assert b"The admin is for staff only" in response.content
        follow = logged_in(make_user(role)).get("/admin/login/?next=/admin/")
        assert follow.status_code == 403


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.ADMIN])
def test_staff_without_the_second_factor_are_sent_to_it(make_user, role: Role) -> None:
    client = logged_in(make_user(role), second_factor=False)
    for page in ("/admin/", "/review/"):
        response = client.get(page, follow=True)
        assert response.redirect_chain[-1][0].startswith("/accounts/second-factor/?next=")
        assert response.status_code == 200 and b"authenticator app" in response.content


def test_only_admins_manage_accounts_in_the_admin(make_user) -> None:
    assert logged_in(make_user(Role.REVIEWER)).get("/admin/marketplace/user/").status_code == 403
    assert logged_in(make_user(Role.ADMIN)).get("/admin/marketplace/user/").status_code == 200


PERMISSIONS = {
    IsDonor: {Role.DONOR},
    IsResearcher: {Role.RESEARCHER},
    IsReviewer: {Role.REVIEWER, Role.ADMIN},
    IsAdmin: {Role.ADMIN},
}


@pytest.mark.parametrize("permission", list(PERMISSIONS), ids=lambda p: p.__name__)
@pytest.mark.parametrize("role", list(Role))
def test_role_permissions(make_user, permission: type, role: Role) -> None:
    class Probe(APIView):
        permission_classes = [permission]

        def get(self, request):
            from rest_framework.response import Response

            return Response({"ok": True})

    request = APIRequestFactory().get("/probe")
    force_authenticate(request, user=make_user(role))
    response = Probe.as_view()(request)
    assert (response.status_code == 200) == (role in PERMISSIONS[permission])


def test_anonymous_fails_every_role_permission() -> None:
    from django.contrib.auth.models import AnonymousUser

    request = APIRequestFactory().get("/probe")
    request.user = AnonymousUser()
    for permission in PERMISSIONS:
        assert not permission().has_permission(request, APIView())


def test_admin_sees_the_admin_link_and_others_do_not(make_user) -> None:
    assert any(item.label == "Admin" for item in nav_items(make_user(Role.ADMIN)))
    for role in (Role.DONOR, Role.RESEARCHER, Role.REVIEWER):
        assert all(item.label != "Admin" for item in nav_items(make_user(role)))

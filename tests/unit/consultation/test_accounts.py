import pytest
from sqlalchemy import select

from consultation import accounts
from consultation import commands as c
from consultation.accounts import Actor
from consultation.exceptions import Conflict, Forbidden, NotFound, Unauthenticated, ValidationFailed
from consultation.model import AuditEntry, User

from .factories import ADMIN, EDITOR

PASSWORD = "correct horse battery"


def make_user(uow, clock, username="wang", roles=("moderator",), password=PASSWORD):
    return accounts.create_user(uow, c.CreateUser(username, password, roles), actor=ADMIN, clock=clock)


def login(uow, clock, username="wang", password=PASSWORD):
    return accounts.authenticate(uow, username, password, clock())


def test_a_user_logs_in_with_the_right_password_and_the_hash_is_argon2(uow, clock):
    make_user(uow, clock, roles=("moderator", "editor"))
    user = login(uow, clock)
    assert (user["username"], user["roles"]) == ("wang", ["editor", "moderator"])
    assert Actor.from_dict(user).has_role("editor")
    with uow:
        assert uow.session.scalar(select(User.password_hash)).startswith("$argon2id$")


def test_wrong_passwords_and_unknown_users_get_the_same_error(uow, clock):
    make_user(uow, clock)
    with pytest.raises(Unauthenticated) as wrong:
        login(uow, clock, password="wrong password")
    with pytest.raises(Unauthenticated) as unknown:
        login(uow, clock, username="nobody")
    assert wrong.value.message == unknown.value.message


def test_five_failures_lock_the_account_for_fifteen_minutes(uow, clock):
    make_user(uow, clock)
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            login(uow, clock, password="wrong password")
    with pytest.raises(Unauthenticated) as locked:
        login(uow, clock)
    assert locked.value.retry_after_s == 15 * 60 + 1
    clock.advance(minutes=15, seconds=1)
    assert login(uow, clock)["username"] == "wang"


def test_a_successful_login_resets_the_failure_count(uow, clock):
    make_user(uow, clock)
    for _ in range(4):
        with pytest.raises(Unauthenticated):
            login(uow, clock, password="wrong password")
    login(uow, clock)
    for _ in range(4):
        with pytest.raises(Unauthenticated):
            login(uow, clock, password="wrong password")
    assert login(uow, clock)["username"] == "wang"


def test_disabled_users_cannot_log_in(uow, clock):
    user = make_user(uow, clock)
    accounts.set_user_disabled(uow, c.SetUserDisabled(user["user_id"]), actor=ADMIN, clock=clock)
    with pytest.raises(Unauthenticated):
        login(uow, clock)


def test_only_admins_manage_users(uow, clock):
    with pytest.raises(Forbidden):
        accounts.create_user(uow, c.CreateUser("li", PASSWORD, ("editor",)), actor=EDITOR, clock=clock)
    with pytest.raises(Forbidden):
        accounts.list_users(uow, actor=EDITOR, clock=clock)


def test_bad_user_input_is_reported_per_field(uow, clock):
    with pytest.raises(ValidationFailed) as caught:
        make_user(uow, clock, username="a b", roles=("king",), password="short")
    assert caught.value.errors == {"password": "password.too_short", "roles": "roles.unknown",
                                   "username": "username.invalid"}


def test_usernames_are_unique(uow, clock):
    make_user(uow, clock)
    with pytest.raises(Conflict):
        make_user(uow, clock)


def test_reset_password_by_admin_or_self_and_role_changes(uow, clock):
    user = make_user(uow, clock)
    me = Actor(user["user_id"], "wang", ("moderator",))
    accounts.reset_password(uow, c.ResetPassword(user["user_id"], "a brand new password"), actor=me, clock=clock)
    assert login(uow, clock, password="a brand new password")
    other = make_user(uow, clock, username="zhao")
    with pytest.raises(Forbidden):
        accounts.reset_password(uow, c.ResetPassword(other["user_id"], "another new password"), actor=me, clock=clock)
    changed = accounts.set_user_roles(uow, c.SetUserRoles(user["user_id"], ("policy_officer",)), actor=ADMIN,
                                      clock=clock)
    assert changed["roles"] == ["policy_officer"]
    with pytest.raises(NotFound):
        accounts.set_user_roles(uow, c.SetUserRoles(999, ("editor",)), actor=ADMIN, clock=clock)
    assert [u["username"] for u in accounts.list_users(uow, actor=ADMIN, clock=clock)] == ["wang", "zhao"]


def test_bootstrap_admin_only_works_on_an_empty_database(uow, clock):
    accounts.bootstrap_admin(uow, "root", PASSWORD, clock=clock)
    assert login(uow, clock, "root")["roles"] == ["admin"]
    with pytest.raises(Conflict):
        accounts.bootstrap_admin(uow, "root2", PASSWORD, clock=clock)


def test_staff_actions_are_audited_without_secrets(uow, clock):
    user = make_user(uow, clock)
    login(uow, clock)
    page = accounts.list_audit_log(uow, actor=ADMIN, clock=clock)
    assert [e["action"] for e in page["items"]] == ["user.login", "user.create"]
    assert page["items"][1]["object_id"] == str(user["user_id"])
    with uow:
        details = [str(d) for d in uow.session.scalars(select(AuditEntry.detail))]
    assert not any(PASSWORD in d or "argon2" in d for d in details)


def test_audit_log_pages_newest_first(uow, clock):
    for n in range(3):
        make_user(uow, clock, username=f"user{n}")
    first = accounts.list_audit_log(uow, c.ListAuditLog(limit=2), actor=ADMIN, clock=clock)
    second = accounts.list_audit_log(uow, c.ListAuditLog(limit=2, before_id=first["next_before_id"]), actor=ADMIN,
                                     clock=clock)
    assert [e["id"] for e in first["items"] + second["items"]] == [3, 2, 1]
    assert second["next_before_id"] is None


def test_site_keys_carry_origins_and_a_css_variable_theme(uow, clock):
    key = accounts.create_site_key(
        uow, c.CreateSiteKey("示例日报", ("https://News.Example.cn/", "http://localhost:8080"),
                             {"--tb-accent": "#c00", "--tb-font": "serif"}),
        actor=ADMIN, clock=clock)
    assert key["allowed_origins"] == ["https://news.example.cn", "http://localhost:8080"]
    assert accounts.get_site_key(uow, c.GetSiteKey(key["key"]), clock=clock)["theme"]["--tb-accent"] == "#c00"
    accounts.update_site_key(uow, c.UpdateSiteKey(key["key"], enabled=False), actor=ADMIN, clock=clock)
    with pytest.raises(NotFound):
        accounts.get_site_key(uow, c.GetSiteKey(key["key"]), clock=clock)
    assert len(accounts.list_site_keys(uow, actor=ADMIN, clock=clock)) == 1


@pytest.mark.parametrize(
    ("origins", "theme", "field"),
    [
        (("https://example.cn/path",), {}, "allowed_origins"),
        (("javascript:alert(1)",), {}, "allowed_origins"),
        ((), {"color": "red"}, "theme"),
        ((), {"--x": "red; } body { display:none"}, "theme"),
        ((), {"--x": "url(https://evil.example/x.png)"}, "theme"),
    ],
)
def test_site_key_origins_and_theme_are_validated(uow, clock, origins, theme, field):
    with pytest.raises(ValidationFailed) as caught:
        accounts.create_site_key(uow, c.CreateSiteKey("x", origins, theme), actor=ADMIN, clock=clock)
    assert field in caught.value.errors


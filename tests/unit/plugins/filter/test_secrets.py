"""acl_password_problems: every class of bad password is named with its variable, never shown."""
from ansible_collections.shardwise.redis.plugins.filter.secrets import acl_password_problems


def users(**passwords):
    base = dict(admin="adm-7d1c9e2b4f6a8c0e", worker="wrk-1a2b3c4d5e6f7a8b", api="api-9f8e7d6c5b4a3928")
    base.update(passwords)
    return [dict(name=n, password=p, var="redis_%s_password" % n) for n, p in base.items()]


def test_good_passwords_pass():
    assert acl_password_problems(users()) == []
    assert acl_password_problems(users(admin="a-Z_0.9:!#$%&()*+,/;<=>?@[]^`{|}~xyz")) == []


def test_each_problem_names_the_variable_and_never_the_password():
    cases = {
        "x9q": "redis_admin_password (user admin) is empty or shorter than 16 characters",
        "with space 1234567890": "redis_admin_password (user admin) contains a space, a quote, a backslash",
        'with"quote1234567890': "contains a space, a quote",
        "back\\slash1234567890": "contains a space, a quote",
        "caf\u00e9-1234567890abcdef": "non-ASCII",
        "CHANGE-ME-admin-at-least-16-chars": "is still the example placeholder",
        "changeme-changeme-changeme": "is still the example placeholder",
        "wrk-1a2b3c4d5e6f7a8b": "redis_worker_password (user worker) is the same as the password of user admin",
    }
    for password, message in cases.items():
        problems = acl_password_problems(users(admin=password))
        assert any(message in p for p in problems), (password, problems)
        assert not any(password in p for p in problems)


def test_extra_users_named_default_or_twice_are_refused():
    extra = [dict(name="default", password="dfl-0a1b2c3d4e5f6a7b", var="redis_acl_extra_users[].password"),
             dict(name="api", password="ap2-0a1b2c3d4e5f6a7b", var="redis_acl_extra_users[].password")]
    problems = acl_password_problems(users() + extra)
    assert any("other than 'default'" in p for p in problems)
    assert any(p == "ACL user api is defined twice: rename the extra user in redis_acl_extra_users" for p in problems)

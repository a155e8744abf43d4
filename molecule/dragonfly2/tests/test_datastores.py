"""Dragonfly2's database and Redis on the manager host, as the manager and schedulers use them."""

from __future__ import annotations

PASSWORD = "rotated-password"  # set by side_effect.yml
REDIS_PASSWORD = 'redis "secret"'


def mysql(host, sql: str, password: str = PASSWORD):
    return login(host, password, "manager", sql)


def login(host, password: str, database: str, sql: str):
    command = "MYSQL_PWD=%s mysql --protocol=TCP -h 127.0.0.1 -P 3306 -u dragonfly -D %s -NBe %s"
    return host.run(command, password, database, sql)


def test_mariadb_listens_on_loopback_only(host) -> None:
    assert host.service("mariadb").is_running and host.service("mariadb").is_enabled
    listening = host.check_output("ss -Hltn 'sport = :3306'")
    assert "127.0.0.1:3306" in listening
    assert "0.0.0.0:3306" not in listening and "*:3306" not in listening


def test_database_is_utf8mb4(host) -> None:
    sql = "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='manager'"
    charset = host.check_output("mysql -NBe %s", sql)
    assert charset.strip() == "utf8mb4"


def test_manager_user_can_migrate(host) -> None:
    """What the manager's start-up migration does: create, alter and drop its tables."""
    sql = "CREATE TABLE t (id INT); ALTER TABLE t ADD COLUMN n VARCHAR(256); DROP TABLE t; SELECT 'ok'"
    result = mysql(host, sql)
    assert result.rc == 0 and result.stdout.strip() == "ok", result.stderr


def test_wrong_password_and_other_databases_refused(host) -> None:
    assert mysql(host, "SELECT 1", password="wrong").rc != 0
    assert login(host, PASSWORD, "mysql", "SELECT 1").rc != 0


def test_redis_requires_its_password(host) -> None:
    assert host.service("redis-server").is_running and host.service("redis-server").is_enabled
    address = host.ansible.get_variables()["lab_private_ip"]
    for bind in ("127.0.0.1", address):
        anonymous = host.run("redis-cli -h %s -p 6379 ping", bind)
        assert "NOAUTH" in anonymous.stdout + anonymous.stderr, (bind, anonymous.stdout)
        command = "REDISCLI_AUTH=%s redis-cli --no-auth-warning -h %s -p 6379 ping"
        authed = host.run(command, REDIS_PASSWORD, bind)
        assert authed.stdout.strip() == "PONG", (bind, authed.stdout, authed.stderr)


def test_redis_config_is_private(host) -> None:
    conf = host.file("/etc/redis/redis.conf")
    assert conf.user == "redis" and conf.mode == 0o640

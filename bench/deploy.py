"""The web server of `playbook.yaml` as a pyinfra deploy, for the benchmark.

Each operation matches a task of the playbook, in the same order and with the
same values, so the three tools converge a host to the same state, apart from
the comment each tool writes above the cron job. pyinfra has
no firewall operation, so `ufw_default`, `ufw_rule` and `ufw_enable` below read
ufw's state with one fact and issue only the commands that change it, as a
pyinfra user would write them. Run it with `pyinfra INVENTORY deploy.py`.
"""

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import FactBase, operation
from pyinfra.operations import apt, crontab, files, server, systemd
from pyinfra.operations.util import any_changed

HERE = Path(__file__).resolve().parent

SITE_NAME = "bench"
SITE_ROOT = "/srv/www/bench"
DEPLOY_USER = "deploy"
WEB_GROUP = "web"
FIREWALL_PORTS = ["22", "80", "443"]
TEMPLATE_DATA = {
    "inventory_hostname": host.name,
    "site_root": SITE_ROOT,
    "deploy_user": DEPLOY_USER,
    "web_group": WEB_GROUP,
    "nginx_worker_connections": 1024,
}


# /etc/default/ufw stores the iptables target that `ufw default POLICY` sets.
UFW_POLICIES = {"DROP": "deny", "ACCEPT": "allow", "REJECT": "reject"}


class UfwState(FactBase):
    """ufw's state: whether it is active, the default input policy and the added rules."""

    def command(self):
        return (
            "ufw status | head -n 1; "
            "grep '^DEFAULT_INPUT_POLICY=' /etc/default/ufw; "
            "ufw show added"
        )

    def requires_command(self, *args, **kwargs):
        return "ufw"

    def process(self, output):
        state = {"active": False, "input_policy": None, "rules": set()}
        for line in output:
            if line.startswith("Status: "):
                state["active"] = line == "Status: active"
            elif line.startswith("DEFAULT_INPUT_POLICY="):
                target = line.split("=", 1)[1].strip('"')
                state["input_policy"] = UFW_POLICIES.get(target, target)
            elif line.startswith("ufw "):
                state["rules"].add(line)
        return state


@operation()
def ufw_default(policy: str):
    state = host.get_fact(UfwState) or {}
    if state.get("input_policy") == policy:
        host.noop(f"incoming policy is {policy}")
        return
    yield f"ufw default {policy} incoming"


@operation()
def ufw_rule(port: str, proto: str):
    state = host.get_fact(UfwState) or {}
    if f"ufw allow {port}/{proto}" in state.get("rules", set()):
        host.noop(f"rule allow {port}/{proto} exists")
        return
    yield f"ufw allow {port}/{proto}"


@operation()
def ufw_enable():
    state = host.get_fact(UfwState) or {}
    if state.get("active"):
        host.noop("ufw is active")
        return
    yield "ufw --force enable"


apt.packages(
    name="Install the web server packages",
    packages=["nginx", "ufw", "logrotate", "rsync"],
    update=True,
    cache_time=3600,
)

server.group(name="Create the web group", group=WEB_GROUP)

server.user(
    name="Create the deploy user",
    user=DEPLOY_USER,
    group=WEB_GROUP,
    shell="/bin/bash",
    create_home=True,
)

files.directory(
    name="Create the site root",
    path=SITE_ROOT,
    user=DEPLOY_USER,
    group=WEB_GROUP,
    mode="755",
)

files.put(
    name="Publish the home page",
    src=str(HERE / "files/index.html"),
    dest=f"{SITE_ROOT}/index.html",
    user=DEPLOY_USER,
    group=WEB_GROUP,
    mode="644",
)

files.put(
    name="Publish the health check",
    src=StringIO("ok\n"),
    dest=f"{SITE_ROOT}/health",
    user=DEPLOY_USER,
    group=WEB_GROUP,
    mode="644",
)

nginx_conf = files.template(
    name="Configure nginx",
    src=str(HERE / "templates/nginx.conf.j2"),
    dest="/etc/nginx/nginx.conf",
    user="root",
    group="root",
    mode="644",
    **TEMPLATE_DATA,
)

site_conf = files.template(
    name="Configure the site",
    src=str(HERE / "templates/site.conf.j2"),
    dest=f"/etc/nginx/sites-available/{SITE_NAME}.conf",
    user="root",
    group="root",
    mode="644",
    **TEMPLATE_DATA,
)

site_link = files.link(
    name="Enable the site",
    path=f"/etc/nginx/sites-enabled/{SITE_NAME}.conf",
    target=f"/etc/nginx/sites-available/{SITE_NAME}.conf",
)

# Debian ships the default site as a symbolic link.
default_site = files.link(
    name="Disable the default site",
    path="/etc/nginx/sites-enabled/default",
    present=False,
)

systemd.service(
    name="Start nginx at boot",
    service="nginx",
    running=True,
    enabled=True,
)

files.directory(
    name="Create the log folder of the app",
    path="/var/log/bench-app",
    user=DEPLOY_USER,
    group=WEB_GROUP,
    mode="750",
)

app_binary = files.put(
    name="Install the app",
    src=str(HERE / "files/bench-app.sh"),
    dest="/usr/local/bin/bench-app",
    user="root",
    group="root",
    mode="755",
)

app_unit = files.template(
    name="Install the app unit",
    src=str(HERE / "templates/bench-app.service.j2"),
    dest="/etc/systemd/system/bench-app.service",
    user="root",
    group="root",
    mode="644",
    **TEMPLATE_DATA,
)

# `daemon_reload=True` on systemd.service reports a change on every run, so the
# reload is a separate operation that runs only when the unit file changed.
systemd.daemon_reload(name="Reload systemd units", _if=any_changed(app_unit))

systemd.service(
    name="Start the app at boot",
    service="bench-app",
    running=True,
    enabled=True,
)

files.put(
    name="Rotate the app logs",
    src=str(HERE / "files/bench-app.logrotate"),
    dest="/etc/logrotate.d/bench-app",
    user="root",
    group="root",
    mode="644",
)

crontab.crontab(
    name="Prune old uploads every night",
    command=f"find {SITE_ROOT} -name '*.upload' -mtime +7 -delete",
    user=DEPLOY_USER,
    cron_name="prune uploads",
    minute="15",
    hour="3",
)

sshd_config = files.line(
    name="Turn off SSH password logins",
    path="/etc/ssh/sshd_config",
    line=r"^#?PasswordAuthentication .*",
    replace="PasswordAuthentication no",
)

journald_conf = files.line(
    name="Cap the journal size",
    path="/etc/systemd/journald.conf",
    line=r"^#?SystemMaxUse=.*",
    replace="SystemMaxUse=200M",
)

server.sysctl(
    name="Raise the listen backlog",
    key="net.core.somaxconn",
    value=1024,
    persist=True,
    persist_file="/etc/sysctl.d/60-bench.conf",
)

server.timezone(name="Set the time zone", timezone="Europe/Berlin")

ufw_default(name="Deny incoming connections by default", policy="deny")

for port in FIREWALL_PORTS:
    ufw_rule(name=f"Allow {port}/tcp", port=port, proto="tcp")

ufw_enable(name="Enable the firewall")

files.put(
    name="Write the message of the day",
    src=StringIO(
        f"{host.name}: managed by configuration management, local changes are overwritten\n"
    ),
    dest="/etc/motd",
    user="root",
    group="root",
    mode="644",
)

# Handlers: pyinfra runs an operation conditionally on earlier ones instead of notify.
systemd.service(
    name="reload nginx",
    service="nginx",
    reloaded=True,
    _if=any_changed(nginx_conf, site_conf, site_link, default_site),
)

systemd.service(
    name="restart bench-app",
    service="bench-app",
    restarted=True,
    daemon_reload=True,
    _if=any_changed(app_binary, app_unit),
)

systemd.service(
    name="reload ssh",
    service="ssh",
    reloaded=True,
    _if=any_changed(sshd_config),
)

systemd.service(
    name="restart journald",
    service="systemd-journald",
    restarted=True,
    _if=any_changed(journald_conf),
)

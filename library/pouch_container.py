#!/usr/bin/python
"""pouch_container: declarative containers through the Pouch API (logic in module_utils)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pouch_container
short_description: Manage containers on pouchd (or dockerd) through the engine API
description:
  - Makes a container match a declared configuration and state, like community.docker's docker_container,
    on pouchd (API 1.24, which docker_container refuses) and on dockerd.
  - Only the options you set are compared with the inspected container. Values the image supplies
    (environment, labels, command) and defaults the daemon fills in do not count as differences.
  - A difference that C(POST /containers/{id}/update) can apply is updated in place (resources and the
    restart policy on both daemons; on pouchd also O(env), O(labels), O(disk_quota) and O(spec_annotation)
    (additions and changes; removing a key recreates)). Any other difference recreates the container
    (stop, remove, create, start), keeping its name. A recreated container is built from the module's
    parameters and the image only.
  - An image change (by image ID) recreates the container, or upgrades it in place with pouchd's
    C(POST /containers/{id}/upgrade) when O(image_upgrade=true).
version_added: "0.1.0"
author:
  - pouch-ansible contributors
extends_documentation_fragment:
  - pouch
  - pouch.attributes
  - pouch.registry_auth
options:
  name:
    description: Container name (no leading C(/)).
    type: str
    required: true
  state:
    description:
      - V(absent) stops and removes the container.
      - V(present) creates it if needed and reconciles its configuration without changing whether it runs
        (a recreated container is started again if it was running).
      - V(started) also makes sure it runs; V(stopped) makes sure it does not.
    type: str
    default: started
    choices: [absent, present, started, stopped]
  image:
    description:
      - Image reference (C(name[:tag]) or C(name@digest)), or an image ID. C(:latest) is added when no tag is
        given.
      - The reference is used exactly as written for lookup, pull and create, because pouchd finds images by
        the
        name they were stored under.
      - Needed to create a container; optional to stop, start or remove an existing one.
    type: str
  pull:
    description:
      - V(missing) pulls when the image is not on the daemon, V(always) pulls every time (reports a change
        only when
        the image ID changed), V(never) fails when the image is absent.
    type: str
    default: missing
    choices: [missing, always, never]
  image_upgrade:
    description:
      - When the image changes, upgrade the container in place with pouchd's upgrade endpoint instead of
        recreating it.
      - pouchd only; fails on dockerd.
    type: bool
    default: false
  recreate:
    description: Recreate the container even if nothing differs.
    type: bool
    default: false
  restart:
    description: Restart a running container when no recreate happens.
    type: bool
    default: false
  comparisons:
    description:
      - How each option is compared, by option name (or alias), plus V(*) for every option and V(image).
      - V(strict) needs an exact match; V(ignore) never compares; V(allow_more_present) (list-like and dict
        options)
        accepts extra entries on the container.
      - Defaults are V(strict) for plain and ordered-list options, V(allow_more_present) for O(env),
        O(labels),
        O(published_ports), O(volumes), O(cap_add), O(cap_drop), O(devices), O(extra_hosts), O(log_options),
        O(disk_quota) and O(spec_annotation), and V(ignore) for O(stop_timeout). V(*) accepts only V(strict)
        or V(ignore).
    type: dict
  detach:
    description:
      - With V(false), wait for the container to exit after starting it and return its exit status and output.
        A non-zero status fails the task unless O(ignore_exit_status=true).
    type: bool
    default: true
  ignore_exit_status:
    description: With O(detach=false), do not fail when the container exits non-zero.
    type: bool
    default: false
  cleanup:
    description: With O(detach=false), remove the container after it exited.
    type: bool
    default: false
  keep_volumes:
    description: Keep the container's anonymous volumes when removing it.
    type: bool
    default: true
  command:
    description: Command (string, split like a shell would, or list). Not compared when unset (the image's
      applies).
    type: raw
  entrypoint:
    description: Entrypoint (string or list).
    type: raw
  env:
    description:
      - Environment variables. Values must be strings; quote C(yes), C(1) and the like (or use C(| string)),
        otherwise the task fails rather than silently sending C(True).
      - Variables the image sets are not differences.
    type: dict
  env_file:
    description: File of C(KEY=VALUE) lines on the managed node, merged under O(env).
    type: path
  labels:
    description: Labels (string values). Labels the image sets are not differences.
    type: dict
  published_ports:
    description:
      - Ports to publish, C([IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp|sctp]); IPv6 addresses in brackets.
    type: list
    elements: str
    aliases: [ports]
  volumes:
    description: Bind mounts C(SOURCE:/path[:ro]) and anonymous volumes C(/path).
    type: list
    elements: str
    aliases: [binds]
  network_mode:
    description: V(bridge), V(host), V(none), C(container:NAME) or a network name. V(default) means V(bridge).
    type: str
  hostname:
    description: Container host name.
    type: str
  user:
    description: User (and group) the process runs as.
    type: str
  working_dir:
    description: Working directory of the process.
    type: str
  restart_policy:
    description: Restart policy; updated in place.
    type: str
    choices: ["no", always, on-failure, unless-stopped]
  restart_retries:
    description: Maximum restarts with V(on-failure); updated in place.
    type: int
  memory:
    description: Memory limit, e.g. C(64m), C(1g), or bytes; updated in place.
    type: str
  memory_swap:
    description: Memory plus swap limit (C(-1) for unlimited); updated in place.
    type: str
  cpu_shares:
    description: CPU shares (relative weight); updated in place.
    type: int
  cpu_quota:
    description: CPU CFS quota in microseconds; updated in place.
    type: int
  cpu_period:
    description: CPU CFS period in microseconds; updated in place.
    type: int
  cpuset_cpus:
    description: CPUs the container may use, e.g. C(0-1); updated in place.
    type: str
  pids_limit:
    description: Maximum number of processes; updated in place.
    type: int
  privileged:
    description: Run privileged.
    type: bool
  cap_add:
    description: Capabilities to add (with or without C(CAP_)).
    type: list
    elements: str
  cap_drop:
    description: Capabilities to drop.
    type: list
    elements: str
  devices:
    description: Host devices, C(/dev/HOST[:/dev/CONTAINER[:rwm]]).
    type: list
    elements: str
  dns:
    description: DNS servers.
    type: list
    elements: str
    aliases: [dns_servers]
  extra_hosts:
    description: Extra C(/etc/hosts) entries, host name to address.
    type: dict
    aliases: [etc_hosts]
  log_driver:
    description: Logging driver (the daemon's default when unset).
    type: str
  log_options:
    description: Logging driver options (string values).
    type: dict
    aliases: [log_opt]
  stop_signal:
    description: Signal that stops the container (V(SIGTERM), V(TERM), V(15)).
    type: str
  stop_timeout:
    description: Seconds to wait after the stop signal before the daemon kills the container. Not compared by
      default.
    type: int
  runtime:
    description: OCI runtime name registered with the daemon (e.g. V(runc)). An unknown runtime fails the
      task.
    type: str
  enable_lxcfs:
    description: Bind lxcfs's C(/proc) files into the container (pouchd started with C(enable-lxcfs)). pouchd
      only.
    type: bool
  rich:
    description: Rich container mode (an init process as pid 1). pouchd only.
    type: bool
  rich_mode:
    description: Init of the rich container; needs O(rich=true), and V(systemd) needs O(privileged=true).
      pouchd only.
    type: str
    choices: [dumb-init, sbin-init, systemd]
  init_script:
    description: Script run as an OCI prestart hook of a rich container. pouchd only.
    type: str
  disk_quota:
    description:
      - "Disk quota rules, path pattern to size, for example C(/) to C(10g), or C(.*) to C(10g) for each
        mount; updated in place. pouchd only."
    type: dict
  quota_id:
    description: Quota ID (V(-1) allocates one); needs a single O(disk_quota) rule. pouchd only.
    type: str
  spec_annotation:
    description: Annotations passed into the OCI spec; updated in place. pouchd only.
    type: dict
notes:
  - Pouch quirks handled for you. pouchd names have no leading C(/). A stopped container's state is C(stopped)
    after an API stop and C(exited) when its process ended. Starting a running container answers 304.
    pouchd has no kill endpoint, so containers are stopped with a timeout. Lists carry no C(State), so
    containers are inspected. pouchd rejects network mode C(default), so C(bridge) is sent.
    C(OomScoreAdj) is not sent.
"""

EXAMPLES = r"""
- name: Run a web server on pouchd
  pouch_container:
    name: web
    image: registry.example.com:5000/library/busybox:latest
    command: httpd -f -p 8080 -h /var/www
    published_ports: ["127.0.0.1:8080:8080"]
    env:
      GREETING: "hello"
      DEBUG: "false"
    labels:
      app: web
    memory: 64m
    restart_policy: unless-stopped

- name: Same container on a Docker host (pouch-only options are refused there)
  pouch_container:
    pouch_host: unix:///var/run/docker.sock
    name: web
    image: registry.example.com:5000/library/busybox:latest
    command: httpd -f -p 8080 -h /var/www

- name: Pouch's own options
  pouch_container:
    name: rich
    image: registry.example.com:5000/library/centos:7
    rich: true
    rich_mode: systemd
    privileged: true
    enable_lxcfs: true
    disk_quota: {"/": "10g"}
    spec_annotation: {team: storage}

- name: Upgrade the image in place (pouchd)
  pouch_container:
    name: web
    image: registry.example.com:5000/library/busybox:v2
    image_upgrade: true

- name: Run a one-off job and use its output
  pouch_container:
    name: migrate
    image: registry.example.com:5000/library/busybox:latest
    command: ["sh", "-c", "echo migrated"]
    detach: false
    cleanup: true
  register: job

- name: Tolerate extra labels but compare env strictly
  pouch_container:
    name: web
    image: registry.example.com:5000/library/busybox:latest
    env: {MODE: "prod"}
    comparisons:
      env: strict
      labels: ignore

- name: Remove it
  pouch_container:
    name: web
    state: absent
"""

RETURN = r"""
container:
  description: The container's inspect output after the task (empty when absent; null when only predicted in
    check mode).
  returned: success
  type: dict
  sample: {"Id": "8276d3f39bd0", "Name": "bb2", "State": {"Status": "running", "Running": true}}
actions:
  description:
    - What was done (or would be done in check mode), in order, among V(pull), V(create), V(start), V(stop),
      V(restart), V(remove), V(rename), V(update), V(upgrade), V(wait) and V(cleanup).
    - A recreate shows as create, stop, remove, rename, start (stop and start only when it runs); the
      replacement is created under a temporary name first, so a configuration the daemon refuses leaves
      the old container untouched.
  returned: always
  type: list
  elements: str
  sample: ["create", "stop", "remove", "rename", "start"]
update_parameters:
  description: The body sent to the update endpoint, when an in-place update happened.
  returned: when updated
  type: dict
  sample: {"Memory": 67108864}
status:
  description: Exit status of the container with O(detach=false).
  returned: when detach is false and the container ran
  type: int
  sample: 0
output:
  description: Combined stdout and stderr of the container with O(detach=false).
  returned: when detach is false and the container ran
  type: str
stdout:
  description: Standard output of the container with O(detach=false).
  returned: when detach is false and the container ran
  type: str
stderr:
  description: Standard error of the container with O(detach=false).
  returned: when detach is false and the container ran
  type: str
"""

from ansible.module_utils.pouch_container_engine import run_module


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()

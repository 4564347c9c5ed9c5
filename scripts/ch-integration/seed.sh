# SPDX-License-Identifier: Apache-2.0
#
# The NoCloud seed ("cloudinit" disk) of one Cloud Hypervisor test guest,
# made the way test_infra's UbuntuDiskConfig::prepare_cloudinit makes it
# (test_infra/src/lib.rs): CH's test_data/cloud-init/ubuntu/ci/{user-data,
# meta-data,network-config} with the same placeholder and address
# substitutions, in the same order, for the network of Guest::new (class
# 192.168, guest id N), then `mkdosfs -n CIDATA -C <file> 8192` and
# `mcopy -o -s`. Sourced (bash).
#
#   make_seed OUT ID CH_SRC     CH_SRC: a Cloud Hypervisor checkout
#   make_seed OUT ID ""         our own minimal seed of the same shape
#                               (for checks without a CH checkout)
# Sets SEED_GUEST_IP, SEED_HOST_IP, SEED_MAC, SEED_PORT.

make_seed() {
    local out=$1 id=$2 src=${3:-} dir
    dir=$(mktemp -d)
    SEED_GUEST_IP=192.168.$id.2
    SEED_HOST_IP=192.168.$id.1
    SEED_MAC=$(printf '12:34:56:78:90:%02x' "$id")
    SEED_PORT=$((8000 + id))
    if [ -n "$src" ]; then
        local ci=$src/test_data/cloud-init/ubuntu/ci
        [ -f "$ci/user-data" ] || { echo "no $ci/user-data" >&2; rm -rf "$dir"; return 1; }
        cp "$ci/meta-data" "$ci/user-data" "$ci/network-config" "$dir/"
    else
        _seed_template "$dir" "$(openssl passwd -6 cloud123)"
    fi
    python3 - "$dir" "$id" <<'PY'
import sys
d, i = sys.argv[1], int(sys.argv[2])
c = "192.168"
net = dict(guest_ip0=f"{c}.{i}.2", host_ip0=f"{c}.{i}.1", guest_mac0=f"12:34:56:78:90:{i:02x}",
           guest_ip1=f"{c}.{i}.130", host_ip1=f"{c}.{i}.129", guest_mac1=f"de:ad:be:ef:78:{i:02x}",
           l2_guest_ip1=f"{c}.{i}.3", l2_guest_ip2=f"{c}.{i}.4", l2_guest_ip3=f"{c}.{i}.5",
           l2_guest_mac1=f"de:ad:be:ef:12:{i:02x}", l2_guest_mac2=f"de:ad:be:ef:34:{i:02x}",
           l2_guest_mac3=f"de:ad:be:ef:56:{i:02x}", tcp_listener_port=str(8000 + i), notify_ip=f"{c}.{i}.1")
u = open(f"{d}/user-data").read()
u = u.replace("@DEFAULT_TCP_LISTENER_MESSAGE", "booted")
u = u.replace("@NOTIFY_IP", net["notify_ip"])
u = u.replace("@TCP_LISTENER_PORT", net["tcp_listener_port"])
open(f"{d}/user-data", "w").write(u)
n = open(f"{d}/network-config").read()
for a, b in (("192.168.2.1", "host_ip0"), ("192.168.2.2", "guest_ip0"), ("192.168.2.129", "host_ip1"),
             ("192.168.2.130", "guest_ip1"), ("192.168.2.3", "l2_guest_ip1"), ("192.168.2.4", "l2_guest_ip2"),
             ("192.168.2.5", "l2_guest_ip3"), ("12:34:56:78:90:ab", "guest_mac0"),
             ("de:ad:be:ef:78:90", "guest_mac1"), ("de:ad:be:ef:12:34", "l2_guest_mac1"),
             ("de:ad:be:ef:34:56", "l2_guest_mac2"), ("de:ad:be:ef:56:78", "l2_guest_mac3")):
    n = n.replace(a, net[b])
open(f"{d}/network-config", "w").write(n)
PY
    rm -f "$out"
    mkdosfs -n CIDATA -C "$out" 8192 >/dev/null
    local f
    for f in user-data meta-data network-config; do
        mcopy -o -i "$out" -s "$dir/$f" ::
    done
    rm -rf "$dir"
}

# The shape of CH's seed, in our words: a user with a password hash, sudo
# and bash; ssh_pwauth; write_files of a systemd unit and its script that
# sends the message to the host's listener; runcmd enabling and starting
# the unit; network-config v2 entries matched by MAC (one for this guest,
# one for another MAC).
_seed_template() {
    local d=$1 hash=$2
    printf 'instance-id: ch-workload-check\nlocal-hostname: cloud\n' >"$d/meta-data"
    cat >"$d/user-data" <<EOF
#cloud-config
users:
  - name: cloud
    passwd: $hash
    sudo: ALL=(ALL) NOPASSWD:ALL
    lock_passwd: False
    shell: /bin/bash

ssh_pwauth: True

runcmd:
  - [ systemctl, daemon-reload]
  - [ systemctl, enable, notify-booted.service]
  - [ systemctl, start, --no-block, notify-booted.service ]

write_files:
  -
    path: /etc/systemd/system/notify-booted.service
    permissions: 0644
    content: |
        [Unit]
        Description=Tell the host that the guest booted
        After=sshd.service

        [Service]
        Type=simple
        ExecStart=/usr/bin/notify-booted.sh
        Restart=on-failure
        RestartSec=2
  -
    path: /usr/bin/notify-booted.sh
    permissions: 0755
    content: |
        #!/bin/bash
        set -e
        echo -n "@DEFAULT_TCP_LISTENER_MESSAGE" > /dev/tcp/@NOTIFY_IP/@TCP_LISTENER_PORT
EOF
    cat >"$d/network-config" <<'EOF'
version: 2
ethernets:
  id0:
    match:
      macaddress: 12:34:56:78:90:ab
    addresses:
    - 192.168.2.2/25
    gateway4: 192.168.2.1
  id4:
    match:
      macaddress: de:ad:be:ef:78:90
    addresses: [192.168.2.130/25]
    gateway4: 192.168.2.129
EOF
}

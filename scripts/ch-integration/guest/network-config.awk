# SPDX-License-Identifier: Apache-2.0
#
# A NoCloud network-config, version 2 (netplan syntax), as Cloud
# Hypervisor's test seeds write it: "ethernets" entries matched by MAC
# address with static addresses and a gateway. POSIX awk (busybox awk in
# the guest). Output, one interface a line, fields separated by the ASCII unit separator
# (octal 037; TAB would merge empty fields in `read`):
#
#   E id macaddress addresses(comma-separated) gateway4 dhcp4 set-name mtu nameservers
#   W message          (something not applied)
#
# Mappings and sequences are tracked by indentation (a key path such as
# ethernets/id0/match/macaddress); "- item" lines and flow sequences
# [a, b] give list values.

function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t\r]+$/, "", s); return s }
function unquote(s) {
    s = trim(s)
    if (s ~ /^'.*'$/ || s ~ /^".*"$/) return substr(s, 2, length(s) - 2)
    sub(/[ \t]+#.*$/, "", s)
    return s
}
function indent_of(s,    m) { m = match(s, /[^ ]/); return m ? m - 1 : length(s) }
function path(    i, p) { p = ""; for (i = 1; i <= depth; i++) p = p (i > 1 ? "/" : "") keys[i]; return p }
function flow(s,    n, i, parts, o) {
    s = trim(s); s = substr(s, 2); sub(/\][ \t]*$/, "", s)
    n = split(s, parts, ",")
    o = ""
    for (i = 1; i <= n; i++) if (trim(parts[i]) != "") o = o (o == "" ? "" : ",") unquote(parts[i])
    return o
}
function append(k, v) { val[k] = (val[k] == "" ? "" : val[k] ",") v }
function set(p, v,    n, parts, id, rest) {
    n = split(p, parts, "/")
    if (parts[1] == "version") { version = v; return }
    if (parts[1] != "ethernets") {
        if (n == 1 && parts[1] != "network") warn["section " parts[1] " not applied"] = 1
        return
    }
    if (n < 3) return
    id = parts[2]
    if (!(id in seen)) { seen[id] = 1; order[++nids] = id }
    rest = substr(p, length("ethernets/" id "/") + 1)
    if (rest == "match/macaddress") mac[id] = tolower(v)
    else if (rest == "addresses") append("addr" SUBSEP id, v)
    else if (rest == "gateway4") gw[id] = v
    else if (rest == "dhcp4") dhcp[id] = tolower(v)
    else if (rest == "set-name") setname[id] = v
    else if (rest == "mtu") mtu[id] = v
    else if (rest == "nameservers/addresses") append("dns" SUBSEP id, v)
    else if (rest == "match/name") warn["ethernets/" id ": match by name not applied"] = 1
    else warn["ethernets/" id "/" rest " not applied"] = 1
}

BEGIN { depth = 0; version = ""; nids = 0 }
{
    line = $0
    sub(/\r$/, "", line)
    text = trim(line)
    if (text == "" || text ~ /^#/) next
    ind = indent_of(line)
    if (text ~ /^-([ \t]|$)/) {
        # an item of the sequence under the last key indented less (or as
        # much: "key:" then "- item" at the same column is valid YAML)
        while (depth > 0 && kind[depth] > ind) depth--
        set(path(), unquote(substr(text, 2)))
        next
    }
    k = text; sub(/:.*/, "", k)
    v = text; sub(/^[^:]*:/, "", v); v = trim(v)
    while (depth > 0 && kind[depth] >= ind) depth--
    keys[++depth] = unquote(k); kind[depth] = ind
    if (v == "") next
    if (v ~ /^\[/) {
        n = split(flow(v), items, ",")
        for (i = 1; i <= n; i++) set(path(), items[i])
    } else
        set(path(), unquote(v))
}
END {
    if (version != "" && version != "2") { print "W\037network-config version " version " not supported"; exit }
    for (i = 1; i <= nids; i++) {
        id = order[i]
        print "E\037" id "\037" mac[id] "\037" val["addr" SUBSEP id] "\037" gw[id] "\037" dhcp[id] "\037" setname[id] "\037" mtu[id] "\037" val["dns" SUBSEP id]
    }
    for (w in warn) print "W\037" w
}

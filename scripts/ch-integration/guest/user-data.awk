# SPDX-License-Identifier: Apache-2.0
#
# The part of cloud-init's "#cloud-config" user-data that Cloud
# Hypervisor's test seeds use, read by a small YAML-subset parser (POSIX
# awk: runs with busybox awk in the guest and with mawk/gawk on a build
# machine). Input: the user-data file. Output: one record a line, fields
# separated by the ASCII unit separator
# (octal 037; TAB would merge empty fields in `read`), for the boot script to apply:
#
#   U name passwd plain_text_passwd sudo shell lock_passwd(true|false) groups
#   K user ssh-public-key                (ssh_authorized_keys of a user)
#   P true|false                         (ssh_pwauth)
#   H hostname                           (hostname:)
#   F n path permissions owner encoding append
#                                        (write_files; content in FILES/n)
#   R shell-command                      (runcmd, one line each)
#   I key                                (a top-level key not applied)
#   W message                            (a construct not understood)
#
# Variables: FILES (directory for write_files contents, must exist).
#
# Supported YAML: block mappings and sequences by indentation, "- " items
# whose first key is on the dash line or on the next lines, plain, 'single'
# and "double" quoted scalars, flow sequences [a, b] of scalars, literal
# block scalars (| |- |+; > is kept literal), comments outside block
# scalars.

function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t\r]+$/, "", s); return s }
function unquote(s,    q) {
    s = trim(s)
    if (s ~ /^'.*'$/) { s = substr(s, 2, length(s) - 2); gsub(/''/, "'", s); return s }
    if (s ~ /^".*"$/) {
        s = substr(s, 2, length(s) - 2)
        gsub(/\\"/, "\"", s); gsub(/\\\\/, "\\", s)
        return s
    }
    # a trailing " # comment" on a plain scalar
    sub(/[ \t]+#.*$/, "", s)
    return s
}
function boolean(s) {
    s = tolower(unquote(s))
    return (s == "true" || s == "yes" || s == "on" || s == "1") ? "true" : "false"
}
function shquote(s) { gsub(/'/, "'\\''", s); return "'" s "'" }
# "[ a, b, 'c d' ]" -> shell words
function flow_to_shell(s,    n, i, parts, out) {
    s = trim(s); s = substr(s, 2); sub(/\][ \t]*$/, "", s)
    n = split(s, parts, ",")
    out = ""
    for (i = 1; i <= n; i++) {
        if (trim(parts[i]) == "") continue
        out = out (out == "" ? "" : " ") shquote(unquote(parts[i]))
    }
    return out
}
function flow_items(s, sep,    n, i, parts, out) {
    s = trim(s); s = substr(s, 2); sub(/\][ \t]*$/, "", s)
    n = split(s, parts, ",")
    out = ""
    for (i = 1; i <= n; i++) {
        if (trim(parts[i]) == "") continue
        out = out (out == "" ? "" : sep) unquote(parts[i])
    }
    return out
}
function indent_of(s,    m) { m = match(s, /[^ ]/); return m ? m - 1 : length(s) }
# key of "key: value" / "key:" (empty if the text is not a mapping entry)
function key_of(t) {
    if (t ~ /^[A-Za-z0-9_.\/-]+:([ \t]|$)/) { sub(/:.*/, "", t); return t }
    return ""
}
function value_of(t) { sub(/^[^:]*:/, "", t); return trim(t) }
function out(s) { print s }

function flush_item() {
    if (section == "users" && have_item) {
        if (it["name"] != "") {
            # cloud-init locks the password unless told otherwise
            lock = (it["lock_passwd"] == "") ? "true" : boolean(it["lock_passwd"])
            out("U\037" it["name"] "\037" it["passwd"] "\037" it["plain_text_passwd"] "\037" it["sudo"] "\037" it["shell"] "\037" lock "\037" it["groups"])
            nk = split(it["ssh_authorized_keys"], keys, "\n")
            for (i = 1; i <= nk; i++) if (keys[i] != "") out("K\037" it["name"] "\037" keys[i])
        }
        else if (it["_scalar"] == "default")
            out("W\037users: 'default' (the distribution's default user) is not created")
        else if (it["_scalar"] != "")
            out("W\037users: scalar item '" it["_scalar"] "' not understood")
    }
    if (section == "write_files" && have_item) {
        if (it["path"] != "") {
            nfiles++
            out("F\037" nfiles "\037" it["path"] "\037" it["permissions"] "\037" it["owner"] "\037" it["encoding"] "\037" it["append"])
            printf "%s", it["content"] > (FILES "/" nfiles)
            close(FILES "/" nfiles)
        } else
            out("W\037write_files: an item without path")
    }
    split("", it)
    have_item = 0
    subkey = ""
}
# apply "key: value" to the current list item
function item_kv(k, v) {
    if (v == "|" || v == "|-" || v == "|+" || v == ">" || v == ">-") {
        block = 1; block_key = k; block_parent = cur_indent; block_indent = -1
        block_chomp = (v ~ /-$/) ? "strip" : "clip"
        it[k] = ""
        return
    }
    if (v == "") { subkey = k; subkey_indent = cur_indent; it[k] = ""; return }
    subkey = ""
    if (k == "ssh_authorized_keys" && v ~ /^\[/) { it[k] = flow_items(v, "\n"); return }
    if (k == "groups" && v ~ /^\[/) { it[k] = flow_items(v, ","); return }
    it[k] = unquote(v)
}

BEGIN { section = ""; have_item = 0; block = 0; nfiles = 0; list_indent = -1 }

{
    line = $0
    sub(/\r$/, "", line)
    ind = indent_of(line)
    text = trim(line)

    # literal block scalar continuation
    if (block) {
        if (text == "" || ind > block_parent) {
            if (block_indent < 0 && text != "") block_indent = ind
            if (text == "") { it[block_key] = it[block_key] "\n"; next }
            it[block_key] = it[block_key] substr(line, block_indent + 1) "\n"
            next
        }
        # end of the block: clip or strip trailing newlines
        s = it[block_key]
        while (s ~ /\n\n$/) s = substr(s, 1, length(s) - 1)
        if (block_chomp == "strip") sub(/\n$/, "", s)
        it[block_key] = s
        block = 0
    }

    if (text == "" || text ~ /^#/) next

    # top-level key
    if (ind == 0 && text !~ /^-/) {
        flush_item()
        k = key_of(text); v = value_of(text)
        section = ""
        list_indent = -1
        if (k == "") { out("W\037not understood: " text); next }
        if (k == "users" || k == "write_files" || k == "runcmd") {
            section = k
            if (v != "" && v != "[]") out("W\037" k ": inline value not understood")
        } else if (k == "ssh_pwauth") {
            out("P\037" boolean(v))
        } else if (k == "hostname") {
            out("H\037" unquote(v))
        } else {
            out("I\037" k)
            section = "ignored"
        }
        next
    }

    if (section == "" || section == "ignored") next

    # a list item of the section (the first dash fixes the list's indent)
    if (text ~ /^-([ \t]|$)/ && (list_indent < 0 || ind == list_indent)) {
        if (list_indent < 0) list_indent = ind
        rest = trim(substr(text, 2))
        if (section == "runcmd") {
            if (rest ~ /^\[/) out("R\037" flow_to_shell(rest))
            else if (rest != "") out("R\037" unquote(rest))
            else out("W\037runcmd: nested block sequence not understood")
            next
        }
        flush_item()
        have_item = 1
        if (rest != "") {
            cur_indent = ind + 2 + indent_of(substr(text, 2)) - 1
            k = key_of(rest)
            if (k != "") item_kv(k, value_of(rest))
            else it["_scalar"] = unquote(rest)
        }
        next
    }

    if (!have_item) { out("W\037" section ": not understood: " text); next }

    # sub-list of a key of the current item (ssh_authorized_keys, groups)
    if (text ~ /^-([ \t]|$)/ && subkey != "") {
        v = unquote(substr(text, 2))
        sep = (subkey == "ssh_authorized_keys") ? "\n" : ","
        it[subkey] = it[subkey] (it[subkey] == "" ? "" : sep) v
        next
    }

    # key of the current item
    k = key_of(text)
    if (k != "") {
        cur_indent = ind
        item_kv(k, value_of(text))
        next
    }
    out("W\037" section ": not understood: " text)
}

END {
    if (block) {
        s = it[block_key]
        while (s ~ /\n\n$/) s = substr(s, 1, length(s) - 1)
        if (block_chomp == "strip") sub(/\n$/, "", s)
        it[block_key] = s
    }
    flush_item()
}

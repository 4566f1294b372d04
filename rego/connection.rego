# METADATA
# title: connection rules
# description: |
#   Denials (`denials`, {"rule", "priority", "message"}) about who connects and how.
package pgward.connection

import data.pgward.lib

# Connection rules. They are decided at startup (sqlstate 28000) and re-checked on every message,
# so that a reloaded policy also applies to sessions that are already open.

denials contains {"rule": "blocked_user", "priority": 10, "message": msg} if {
	lib.is_blocked_user
	msg := concat("", ["user ", lib.user, " is blocked"])
}

denials contains {"rule": "tls_required", "priority": 11, "message": msg} if {
	_tls_missing
	msg := concat("", ["user ", lib.user, " must connect with TLS"])
}

_tls_missing if {
	lib.is_tls_required_user
	not _tls_enabled
}

_tls_enabled if input.connection.tls.enabled == true

# Per-user client networks; the "*" entry applies to users without their own entry.
# A user with neither may connect from anywhere.
_allowed_networks := networks if {
	networks := data.pgward.allowed_networks[input.connection.user]
} else := data.pgward.allowed_networks["*"]

denials contains {"rule": "client_network", "priority": 12, "message": msg} if {
	_network_denied
	msg := concat("", [
		"client address ", lib.text(input.connection.client_addr),
		" is not in the networks allowed for user ", lib.user,
	])
}

_network_denied if {
	networks := _allowed_networks
	not _client_in_networks(networks)
}

# An address that is not an IP (or a CIDR that does not parse) matches nothing: deny.
_client_in_networks(networks) if {
	some cidr in networks
	net.cidr_contains(cidr, _client_ip)
}

# IPv4-mapped IPv6 addresses (::ffff:10.1.2.3) are compared as IPv4.
_client_ip := trim_prefix(addr, "::ffff:") if {
	addr := lower(input.connection.client_addr)
	startswith(addr, "::ffff:")
	contains(addr, ".")
} else := input.connection.client_addr

# Startup parameters and `options` settings (-c name=value, --name=value), keyed the way
# PostgreSQL reads them: case-insensitive, dashes as underscores.
# Only the names the rules below look at are kept.
startup_settings contains [key, value] if {
	some name, value in input.connection.parameters
	key := setting_key(name)
	watched_startup_setting(key)
}

startup_settings contains [key, value] if {
	some name, value in input.connection.options
	key := setting_key(name)
	watched_startup_setting(key)
}

watched_startup_setting("replication")

watched_startup_setting("role")

watched_startup_setting("session_authorization")

watched_startup_setting("default_transaction_read_only")

watched_startup_setting("transaction_read_only")

setting_key(name) := replace(lower(name), "-", "_")

_false_values := {"false", "off", "no", "0"}

denials contains {"rule": "replication", "priority": 13, "message": "replication connections are reserved for admins"} if {
	not lib.is_admin
	some [name, value] in startup_settings
	name == "replication"
	not _is_false_value(value)
}

_is_false_value(value) if lower(trim_space(value)) in _false_values

denials contains {"rule": "startup_role_setting", "priority": 14, "message": msg} if {
	not lib.is_admin
	some [name, _] in startup_settings
	name in lib.role_settings
	msg := concat("", ["setting ", name, " at startup is reserved for admins"])
}

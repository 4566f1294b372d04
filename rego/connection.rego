package pgward

# Connection rules. They are decided at startup (sqlstate 28000) and re-checked on every message,
# so that a reloaded policy also applies to sessions that are already open.

_denials contains [10, msg] if {
	_is_blocked_user
	msg := concat("", ["user ", _user, " is blocked"])
}

_denials contains [11, msg] if {
	_tls_missing
	msg := concat("", ["user ", _user, " must connect with TLS"])
}

_tls_missing if {
	_is_tls_required_user
	not _tls_enabled
}

_tls_enabled if input.connection.tls.enabled == true

# Per-user client networks; the "*" entry applies to users without their own entry.
# A user with neither may connect from anywhere.
_allowed_networks := networks if {
	networks := data.pgward.allowed_networks[input.connection.user]
} else := data.pgward.allowed_networks["*"]

_denials contains [12, msg] if {
	_network_denied
	msg := concat("", [
		"client address ", _text(input.connection.client_addr),
		" is not in the networks allowed for user ", _user,
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
_startup_settings contains [key, value] if {
	some name, value in input.connection.parameters
	key := _setting_key(name)
	_watched_startup_setting(key)
}

_startup_settings contains [key, value] if {
	some name, value in input.connection.options
	key := _setting_key(name)
	_watched_startup_setting(key)
}

_watched_startup_setting("replication")

_watched_startup_setting("role")

_watched_startup_setting("session_authorization")

_watched_startup_setting("default_transaction_read_only")

_watched_startup_setting("transaction_read_only")

_setting_key(name) := replace(lower(name), "-", "_")

_false_values := {"false", "off", "no", "0"}

_denials contains [13, "replication connections are reserved for admins"] if {
	not _is_admin
	some [name, value] in _startup_settings
	name == "replication"
	not _is_false_value(value)
}

_is_false_value(value) if lower(trim_space(value)) in _false_values

_role_settings := {"role", "session_authorization"}

_denials contains [14, msg] if {
	not _is_admin
	some [name, _] in _startup_settings
	name in _role_settings
	msg := concat("", ["setting ", name, " at startup is reserved for admins"])
}

_denials contains [15, msg] if {
	_is_read_only_user
	some [name, value] in _startup_settings
	name in _read_only_settings
	not _turns_read_only_on(value)
	msg := concat("", ["read-only user ", _user, " cannot set ", name, " at startup"])
}

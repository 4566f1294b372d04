package pgward_test

# Connection rules: blocked users, TLS, client networks, replication, startup settings.

with_conn(user, fields) := object.union(connection(user), fields)

tls_on := {"tls": {"enabled": true, "version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "client_cert_subject": null}}

startup_cases := [
	{"note": "ordinary user", "conn": connection("alice"), "reasons": []},
	{"note": "blocked user", "conn": connection("mallory"), "reasons": ["user mallory is blocked"]},
	{"note": "tls-required user without tls", "conn": connection("auditor"), "reasons": ["user auditor must connect with TLS"]},
	{"note": "tls-required user with tls", "conn": with_conn("auditor", tls_on), "reasons": []},
	{"note": "analyst from loopback", "conn": connection("analyst"), "reasons": []},
	{"note": "analyst from a private network", "conn": with_conn("analyst", {"client_addr": "10.20.30.40"}), "reasons": []},
	{"note": "analyst from IPv6 loopback", "conn": with_conn("analyst", {"client_addr": "::1"}), "reasons": []},
	{"note": "analyst from IPv4-mapped loopback", "conn": with_conn("analyst", {"client_addr": "::ffff:127.0.0.1"}), "reasons": []},
	{
		"note": "analyst from the internet",
		"conn": with_conn("analyst", {"client_addr": "203.0.113.9"}),
		"reasons": ["client address 203.0.113.9 is not in the networks allowed for user analyst"],
	},
	{
		"note": "analyst from an IPv4-mapped internet address",
		"conn": with_conn("analyst", {"client_addr": "::ffff:203.0.113.9"}),
		"reasons": ["client address ::ffff:203.0.113.9 is not in the networks allowed for user analyst"],
	},
	{
		"note": "analyst from an address that is not an IP",
		"conn": with_conn("analyst", {"client_addr": "/var/run/postgresql/.s.PGSQL.5432"}),
		"reasons": ["client address /var/run/postgresql/.s.PGSQL.5432 is not in the networks allowed for user analyst"],
	},
	{"note": "users without networks connect from anywhere", "conn": with_conn("alice", {"client_addr": "203.0.113.9"}), "reasons": []},
	{
		"note": "replication for a non-admin",
		"conn": with_conn("alice", {"parameters": {"user": "alice", "replication": "database"}}),
		"reasons": ["replication connections are reserved for admins"],
	},
	{
		"note": "replication=true for a non-admin",
		"conn": with_conn("alice", {"parameters": {"user": "alice", "REPLICATION": "true"}}),
		"reasons": ["replication connections are reserved for admins"],
	},
	{
		"note": "replication=false",
		"conn": with_conn("alice", {"parameters": {"user": "alice", "replication": "false"}}),
		"reasons": [],
	},
	{
		"note": "role in options",
		"conn": with_conn("alice", {"parameters": {"options": "-c role=postgres"}, "options": {"role": "postgres"}}),
		"reasons": ["setting role at startup is reserved for admins"],
	},
	{
		"note": "session_authorization as a startup parameter",
		"conn": with_conn("alice", {"parameters": {"session_authorization": "postgres"}}),
		"reasons": ["setting session_authorization at startup is reserved for admins"],
	},
	{
		"note": "session-authorization spelled with dashes in options",
		"conn": with_conn("alice", {"options": {"session-authorization": "postgres"}}),
		"reasons": ["setting session_authorization at startup is reserved for admins"],
	},
	{
		"note": "read-only user turning read-only off in options",
		"conn": with_conn("analyst", {"options": {"default_transaction_read_only": "off"}}),
		"reasons": ["read-only user analyst cannot set default_transaction_read_only at startup"],
	},
	{
		"note": "read-only user turning read-only off with --name=value",
		"conn": with_conn("readonly", {"options": {"default-transaction-read-only": "0"}}),
		"reasons": ["read-only user readonly cannot set default_transaction_read_only at startup"],
	},
	{
		"note": "read-only user turning read-only off as a startup parameter",
		"conn": with_conn("readonly", {"parameters": {"transaction_read_only": "no"}}),
		"reasons": ["read-only user readonly cannot set transaction_read_only at startup"],
	},
	{
		"note": "read-only user asking for read-only",
		"conn": with_conn("analyst", {"options": {"default_transaction_read_only": "on"}}),
		"reasons": [],
	},
	{
		"note": "ordinary user setting read-only off",
		"conn": with_conn("alice", {"options": {"default_transaction_read_only": "off"}}),
		"reasons": [],
	},
	{"note": "ordinary option", "conn": with_conn("analyst", {"options": {"search_path": "app"}}), "reasons": []},
]

test_startup[tc.note] if {
	some tc in startup_cases
	d := decide(startup(tc.conn))
	d.reasons == tc.reasons
	allowed := count(tc.reasons) == 0
	d.allow == allowed
}

test_startup_denials_are_28000[tc.note] if {
	some tc in [c | some c in startup_cases; count(c.reasons) > 0]
	decide(startup(tc.conn)).sqlstate == "28000"
}

admin_startup_cases := [
	{"note": "replication", "conn": with_conn("root", {"parameters": {"replication": "database"}})},
	{"note": "role in options", "conn": with_conn("root", {"options": {"role": "postgres"}})},
]

test_admin_startup[tc.note] if {
	some tc in admin_startup_cases
	d := decide(startup(tc.conn)) with data.pgward.admins as ["root"]
	d.allow == true
}

test_wildcard_networks[tc.note] if {
	some tc in [
		{"note": "applies to users without an entry", "conn": with_conn("alice", {"client_addr": "198.51.100.7"}), "allow": false},
		{"note": "allows its networks", "conn": with_conn("alice", {"client_addr": "192.0.2.10"}), "allow": true},
		{"note": "a user's own entry wins", "conn": with_conn("bob", {"client_addr": "198.51.100.7"}), "allow": true},
		{"note": "an invalid CIDR matches nothing", "conn": with_conn("carol", {"client_addr": "192.0.2.10"}), "allow": false},
	]
	networks := {"*": ["192.0.2.0/24"], "bob": ["198.51.100.0/24"], "carol": ["not-a-cidr"]}
	d := decide(startup(tc.conn)) with data.pgward.allowed_networks as networks
	d.allow == tc.allow
}

# Connection rules are re-checked on every message (a reloaded policy applies to open sessions),
# without the startup SQLSTATE.
test_connection_rules_apply_to_messages[tc.note] if {
	some tc in [
		{"note": "blocked user", "conn": connection("mallory"), "reason": "user mallory is blocked"},
		{"note": "tls", "conn": connection("auditor"), "reason": "user auditor must connect with TLS"},
		{
			"note": "network",
			"conn": with_conn("analyst", {"client_addr": "203.0.113.9"}),
			"reason": "client address 203.0.113.9 is not in the networks allowed for user analyst",
		},
	]
	d := decide(query_as(tc.conn, [stmt({})]))
	d.allow == false
	d.reasons == [tc.reason]
	not "sqlstate" in object.keys(d)
}

package pgward_test

# The decision's shape and the deny-by-default behaviour.

sample_inputs := {
	"select": query("alice", [stmt({})]),
	"delete without where": query("alice", [delete_from("public", "orders", false)]),
	"startup": startup_of("alice"),
	"startup read-only": startup_of("analyst"),
	"startup blocked": startup_of("mallory"),
	"parse error": object.union(query("alice", []), {"parse_error": "syntax error at or near \"SELEC\""}),
	"sensitive": query("alice", [select_from("public", "credit_cards")]),
	"empty": {},
	"not an object": "SELECT 1",
	"version 2": object.union(query("alice", [stmt({})]), {"version": 2}),
}

allowed_keys := {"allow", "denials", "alerts", "sqlstate", "session_parameters"}

test_decision_shape[note] if {
	some note, doc in sample_inputs
	d := decide_raw(doc)
	is_object(d)
	every k, _ in d {
		k in allowed_keys
	}
	is_boolean(d.allow)
	is_array(d.denials)
	every x in d.denials {
		object.keys(x) == {"rule", "message", "priority"}
		regex.match(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$`, x.rule)
		is_string(x.message)
		x.message != ""
		is_number(x.priority)
	}
	is_array(d.alerts)
	every a in d.alerts {
		object.keys(a) == {"rule", "severity", "message"}
		is_string(a.rule)
		is_string(a.severity)
		is_string(a.message)
	}
	optional_string(d, "sqlstate")
	every _, v in object.get(d, "session_parameters", {}) {
		is_string(v)
	}
}

# Every denial names its rule; ordered by priority, then rule id.
test_denials_carry_rule_ids if {
	doc := query("analyst", [delete_from("public", "orders", false), stmt({"functions": ["pg_catalog.pg_terminate_backend"]})])
	[x.rule | some x in decide_raw(doc).denials] == ["read_only", "read_only", "unbounded_write", "admin_only"]
}

test_rule_ids_of_connection_denials if {
	d := decide_raw(startup_of("mallory"))
	d.denials == [{"rule": "blocked_user", "message": "user mallory is blocked", "priority": 10}]
}

# An invalid document that no rule names is still denied, under the rule id default_deny.
test_default_deny_has_a_rule_id if {
	d := data.pgward.decision with input as query("alice", [stmt({})]) with data.pgward.lib.valid_input as false
	d.allow == false
	d.denials == [{
		"rule": "default_deny",
		"message": "denied by default: the input document is not a valid version 1 document",
		"priority": 0,
	}]
}

optional_string(d, key) if not key in object.keys(d)

optional_string(d, key) if is_string(d[key])

# A denial always says why; an allowed decision has no reasons.
test_reasons_iff_denied[note] if {
	some note, doc in sample_inputs
	d := decide(doc)
	has_reasons := count(d.reasons) > 0
	has_reasons != d.allow
}

test_plain_select_allowed if {
	decide(query("alice", [stmt({})])) == {"allow": true, "reasons": [], "alerts": []}
}

test_empty_query_allowed if {
	decide(query("alice", [])).allow == true
}

test_copy_data_allowed if {
	doc := object.union(query("alice", []), {"message": {"type": "CopyData"}})
	decide(doc).allow == true
}

test_startup_allowed if {
	decide(startup_of("alice")) == {"allow": true, "reasons": [], "alerts": []}
}

malformed_inputs := [
	{"note": "empty document", "doc": {}, "reason": "input document is not version 1"},
	{"note": "version 2", "doc": object.union(query("alice", []), {"version": 2}), "reason": "input document is not version 1"},
	{"note": "version as string", "doc": object.union(query("alice", []), {"version": "1"}), "reason": "input document is not version 1"},
	{
		"note": "unknown phase",
		"doc": object.union(query("alice", []), {"phase": "auth"}),
		"reason": "message type Query is not expected in phase auth",
	},
	{
		"note": "Query in startup phase",
		"doc": object.union(query("alice", []), {"phase": "startup"}),
		"reason": "message type Query is not expected in phase startup",
	},
	{
		"note": "StartupMessage in message phase",
		"doc": object.union(startup_of("alice"), {"phase": "message"}),
		"reason": "message type StartupMessage is not expected in phase message",
	},
	{
		"note": "startup with statements",
		"doc": object.union(startup_of("alice"), {"statements": [stmt({})]}),
		"reason": "message type StartupMessage is not expected in phase startup",
	},
	{
		"note": "unknown message type",
		"doc": object.union(query("alice", []), {"message": {"type": "Execute"}}),
		"reason": "message type Execute is not expected in phase message",
	},
]

test_malformed_input_denied[tc.note] if {
	some tc in malformed_inputs
	d := decide(tc.doc)
	d.allow == false
	d.reasons[0] == tc.reason
}

test_not_an_object_denied_by_default if {
	d := decide("SELECT 1")
	d.allow == false
	d.reasons == ["input document is not version 1"]
}

test_reasons_are_ordered_by_rule if {
	doc := query("mallory", [delete_from("public", "orders", false), stmt({"functions": ["pg_read_file"]})])
	decide(doc).reasons == [
		"user mallory is blocked",
		"DELETE without WHERE on public.orders",
		"function pg_read_file() is reserved for admins",
	]
}

test_identical_reasons_reported_once if {
	doc := query("alice", [delete_from("public", "orders", false), delete_from("public", "orders", false)])
	decide(doc).reasons == ["DELETE without WHERE on public.orders"]
}

test_sqlstate[tc.note] if {
	some tc in [
		{"note": "startup denial is 28000", "doc": startup_of("mallory"), "want": {"sqlstate": "28000"}},
		{
			"note": "parse error is 42601",
			"doc": object.union(query("alice", []), {"parse_error": "syntax error"}),
			"want": {"sqlstate": "42601"},
		},
		{"note": "other denials use the gateway default", "doc": query("alice", [delete_from(null, "t", false)]), "want": {}},
		{"note": "allowed startup has none", "doc": startup_of("alice"), "want": {}},
	]
	d := decide(tc.doc)
	object.filter(d, {"sqlstate"}) == tc.want
}

test_session_parameters[tc.note] if {
	some tc in [
		{
			"note": "read-only user at startup",
			"doc": startup_of("analyst"),
			"want": {"session_parameters": {"default_transaction_read_only": "on"}},
		},
		{
			"note": "read-only user readonly at startup",
			"doc": startup_of("readonly"),
			"want": {"session_parameters": {"default_transaction_read_only": "on"}},
		},
		{"note": "ordinary user at startup", "doc": startup_of("alice"), "want": {}},
		{"note": "read-only user on a message", "doc": query("analyst", [stmt({})]), "want": {}},
	]
	d := decide(tc.doc)
	object.filter(d, {"session_parameters"}) == tc.want
}

# The rules read only the fields they need: the gateway may leave the others out of the input,
# and the decision stays the same.
test_decision_without_unread_fields[note] if {
	some note, doc in {
		"blocked user": startup_of("mallory"),
		"delete without where": query("alice", [delete_from("public", "orders", false)]),
		"select": query("alice", [stmt({})]),
	}
	trimmed := object.union(object.remove(doc, {"connection"}), {"connection": object.remove(doc.connection, {"id", "client_port", "protocol_version", "authenticated", "transaction_status"})})
	decide(trimmed) == decide(doc)
}

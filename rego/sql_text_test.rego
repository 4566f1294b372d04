package pgward_test

# SQL run from a string (issue 10): a call whose SQL text the classifier could not read is for
# admins only; a classified one is judged by what it runs.

unclassified_call := stmt({
	"functions": ["ts_stat"],
	"read_only": false,
	"sql_text_calls": [{"function": "ts_stat", "classified": false}],
})

classified_call := stmt({
	"functions": ["ts_stat"],
	"relations": [rel(null, "docs", "read")],
	"sql_text_calls": [{"function": "ts_stat", "classified": true}],
})

test_unclassified_sql_text_denied[user] if {
	some user in ["alice", "readonly"]
	d := decide(query(user, [unclassified_call]))
	d.allow == false
	"SQL run from a non-constant string by ts_stat() is reserved for admins" in d.reasons
}

test_unclassified_sql_text_allowed_for_admins if {
	d := decide(query("root", [unclassified_call])) with data.pgward.admins as ["root"]
	d.allow == true
	some a in d.alerts
	a.rule == "admin_override"
	contains(a.message, "ts_stat")
}

test_classified_sql_text_allowed if {
	d := decide(query("alice", [classified_call]))
	d.allow == true
}

# ts_stat('SELECT set_config(''role'', ...)::tsvector'): the classifier puts the setting and the
# role change into the calling statement; the role-change rule denies it.
test_classified_sql_text_role_change_denied if {
	s := object.union(classified_call, {
		"read_only": false,
		"role_change": true,
		"functions": ["ts_stat", "set_config"],
		"settings": [setting("role", "postgres", "set_config")],
	})
	d := decide(query("alice", [s]))
	d.allow == false
}

# data.pgward.read_only_deny_user_functions: off by default.

test_read_only_user_function_allowed_by_default if {
	d := decide(query("readonly", [stmt({"functions": ["public.my_report"]})]))
	d.allow == true
}

test_read_only_user_function_denied_when_enabled[f] if {
	some f in ["my_report", "public.my_report", "pg_catalog.no_such_builtin"]
	d := decide(query("readonly", [stmt({"functions": [f]})])) with data.pgward.read_only_deny_user_functions as true
	d.allow == false
	concat("", ["read-only user readonly cannot call user-defined function ", f, "()"]) in d.reasons
}

test_read_only_builtin_function_allowed_when_enabled[f] if {
	some f in ["lower", "pg_catalog.lower", "now", "count"]
	d := decide(query("readonly", [stmt({"functions": [f]})])) with data.pgward.read_only_deny_user_functions as true
	d.allow == true
}

test_user_function_option_only_for_read_only_users if {
	d := decide(query("alice", [stmt({"functions": ["my_report"]})])) with data.pgward.read_only_deny_user_functions as true
	d.allow == true
}

# query_to_xml and dblink are dangerous functions: one reason, by name, as before issue 10.
test_dangerous_sql_text_function_judged_by_name if {
	s := stmt({
		"functions": ["query_to_xml"],
		"read_only": false,
		"sql_text_calls": [{"function": "query_to_xml", "classified": false}],
	})
	d := decide(query("alice", [s]))
	d.reasons == ["function query_to_xml() is reserved for admins"]
}

# query_to_xml and dblink are dangerous functions: one reason, by name, as before issue 10.
test_dangerous_sql_text_function_judged_by_name if {
	s := stmt({
		"functions": ["query_to_xml"],
		"read_only": false,
		"sql_text_calls": [{"function": "query_to_xml", "classified": false}],
	})
	d := decide(query("alice", [s]))
	d.reasons == ["function query_to_xml() is reserved for admins"]
}

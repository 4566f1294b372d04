package pgward_test

import data.pgward

# Site rules in package pgward.custom are never skipped by the fast path.

test_custom_deny_applies_to_a_fast_path_query if {
	doc := query("alice", [stmt({})])
	pgward.decision.allow with input as doc
	d := pgward.decision with input as doc with data.pgward.custom.deny as {"payroll is closed"}
	not d.allow
	d.reasons == ["payroll is closed"]
}

test_custom_deny_applies_at_startup if {
	d := pgward.decision with input as startup_of("alice") with data.pgward.custom.deny as {"maintenance window"}
	not d.allow
	d.reasons == ["maintenance window"]
	d.sqlstate == "28000"
}

test_custom_alert_is_raised_and_allowed if {
	a := {"rule": "site", "severity": "low", "message": "seen"}
	d := pgward.decision with input as query("alice", [stmt({})]) with data.pgward.custom.alert as {a}
	d.allow
	d.alerts == [a]
}

test_shipped_reasons_come_before_custom_ones if {
	doc := query("alice", [stmt({"command": "DROP TABLE", "node": "DropStmt", "ddl": true, "read_only": false})])
	d := pgward.decision with input as doc with data.pgward.custom.deny as {"site reason"}
	not d.allow
	count(d.reasons) == 2
	d.reasons[1] == "site reason"
}

package pgward_test

import data.pgward

# Site rules in package pgward.custom: string denials (rule id "custom"), object denials with a
# rule id of their own, alerts; judged on every message and at startup.

test_custom_deny_applies_to_a_plain_query if {
	doc := query("alice", [stmt({})])
	pgward.decision.allow with input as doc
	d := pgward.decision with input as doc with data.pgward.custom.deny as {"payroll is closed"}
	not d.allow
	d.denials == [{"rule": "custom", "message": "payroll is closed", "priority": 60}]
}

test_custom_deny_applies_at_startup if {
	d := pgward.decision with input as startup_of("alice") with data.pgward.custom.deny as {"maintenance window"}
	not d.allow
	d.denials == [{"rule": "custom", "message": "maintenance window", "priority": 60}]
	d.sqlstate == "28000"
}

test_custom_deny_object_keeps_its_rule_id if {
	deny := {"rule": "payroll_hours", "message": "payroll is closed"}
	d := pgward.decision with input as query("alice", [stmt({})]) with data.pgward.custom.deny as {deny}
	d.denials == [{"rule": "payroll_hours", "message": "payroll is closed", "priority": 60}]
}

# A malformed entry still denies (fail closed), under the rule id "custom".
test_custom_deny_malformed_entry_still_denies if {
	d := pgward.decision with input as query("alice", [stmt({})]) with data.pgward.custom.deny as {{"text": "x"}, 7}
	not d.allow
	{x.rule | some x in d.denials} == {"custom"}
	{x.message | some x in d.denials} == {`{"text":"x"}`, "7"}
}

test_custom_alert_is_raised_and_allowed if {
	a := {"rule": "site", "severity": "low", "message": "seen"}
	d := pgward.decision with input as query("alice", [stmt({})]) with data.pgward.custom.alert as {a}
	d.allow
	d.alerts == [a]
}

test_shipped_denials_come_before_custom_ones if {
	doc := query("alice", [stmt({"command": "DROP TABLE", "node": "DropStmt", "ddl": true, "read_only": false})])
	d := pgward.decision with input as doc with data.pgward.custom.deny as {"site reason"}
	not d.allow
	[x.rule | some x in d.denials] == ["admin_only", "custom"]
	d.denials[1].message == "site reason"
}

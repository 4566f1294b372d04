package pgward_test

# Every input document of the test tables, with the decision OPA's Go evaluator gives for it under
# the shipped data.json. scripts/test-policy.sh evaluates the same documents with the compiled
# policy.wasm in @open-policy-agent/opa-wasm and requires identical decisions, because `opa test`
# does not exercise the wasm target the gateway runs.

parity_inputs[concat("", ["sample: ", note])] := doc if some note, doc in sample_inputs

parity_inputs[concat("", ["malformed: ", tc.note])] := tc.doc if some tc in malformed_inputs

parity_inputs[concat("", ["startup: ", tc.note])] := startup(tc.conn) if some tc in startup_cases

parity_inputs[concat("", ["bind: ", tc.note])] := bind("alice", tc.prepared) if some tc in bind_cases

parity_inputs[concat("", ["prepared: ", tc.note])] := query(tc.user, [tc.stmt]) if some tc in prepared_cases

parity_inputs[concat("", ["read-only denied: ", tc.note])] := query("analyst", [tc.stmt]) if some tc in ro_denied

parity_inputs[concat("", ["read-only setting: ", tc.note])] := query("readonly", [stmt({"command": "SET", "node": "VariableSetStmt", "read_only": false, "settings": [tc.setting]})]) if {
	some tc in ro_setting_denied
}

parity_inputs[concat("", ["read-only allowed: ", tc.note])] := query("analyst", [tc.stmt]) if some tc in ro_allowed

parity_inputs[concat("", ["unbounded: ", tc.note])] := query("alice", [tc.stmt]) if some tc in unbounded_cases

parity_inputs[concat("", ["admin only: ", tc.note])] := query("alice", [tc.stmt]) if some tc in admin_only_cases

parity_inputs[concat("", ["dangerous function: ", tc.note])] := query("alice", [stmt({"functions": [tc.fn]})]) if {
	some tc in dangerous_function_cases
}

parity_inputs[concat("", ["sensitive: ", tc.note])] := query("alice", [tc.stmt]) if some tc in sensitive_cases

parity_inputs["multi-statement query"] := query("analyst", [
	select_from("public", "credit_cards"),
	delete_from("public", "orders", false),
	stmt({"functions": ["pg_catalog.pg_terminate_backend"]}),
])

parity_decisions[note] := d if {
	some note, doc in parity_inputs
	d := data.pgward.decision with input as doc
}

test_parity_inputs_cover_every_table if {
	count(parity_decisions) == count(parity_inputs)
	count(parity_inputs) > 150
}

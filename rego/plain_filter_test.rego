package pgward_test

# The statement filter (`plain` in input.rego) only skips work: with it switched off, every rule
# judges every statement, and every test document must get exactly the same decision.

reference_decision(doc) := d if {
	d := decide(doc) with data.pgward.lib.plain as false
}

# parity_inputs (parity_test.rego) are also run through the compiled wasm by scripts/test-policy.sh.
parity_inputs[concat("", ["bench: ", note])] := doc if some note, doc in bench_like_inputs

test_plain_filter_changes_no_decision[note] if {
	some note, doc in parity_inputs
	decide(doc) == reference_decision(doc)
}

test_plain_statement_not_judged if {
	statements := data.pgward.lib.judged with input as query("alice", [stmt({}), select_from("public", "orders")])
	count(statements) == 0
}

test_non_plain_statement_judged if {
	statements := data.pgward.lib.judged with input as query("alice", [stmt({}), select_from("public", "credit_cards")])
	statements == {select_from("public", "credit_cards")}
}

# Documents like the ones `make bench` evaluates (gateway/src/policy/eval.bench.ts).
bench_like_inputs := {
	"startup": startup_of("app"),
	"startup of a read-only user": startup_of("analyst"),
	"select with a join": query("app", [stmt({"relations": [rel("public", "orders", "read"), rel(null, "customers", "read")]})]),
	"insert": query("app", [stmt({
		"command": "INSERT", "node": "InsertStmt", "read_only": false,
		"relations": [rel(null, "orders", "write")],
	})]),
	"update with where": query("app", [update_of(null, "orders", true)]),
	"transaction": query("app", [
		stmt({"command": "BEGIN", "node": "TransactionStmt", "utility": "transaction", "transaction": {"kind": "BEGIN", "mode": null}}),
		stmt({}),
		stmt({"command": "COMMIT", "node": "TransactionStmt", "utility": "transaction", "transaction": {"kind": "COMMIT", "mode": null}}),
	]),
	"read-only user select": query("analyst", [select_from(null, "orders")]),
	"function call that is not dangerous": query("app", [stmt({"functions": ["pg_catalog.count", "now"]})]),
	"bind with two parameters": object.union(
		bind("app", prepared([select_from("public", "orders")], null)),
		{"statements": [select_from("public", "orders")]},
	),
	"copy data": object.union(query("app", []), {"message": {"type": "CopyData"}}),
}

package pgward_test

# The fast path (`_fast` in decision.rego) and the statement filter (`_plain` in input.rego) only
# skip work: with both switched off, every rule judges every statement, and every test document
# must get exactly the same decision.

reference_decision(doc) := d if {
	d := data.pgward.decision with input as doc
		with data.pgward._fast as false
		with data.pgward._plain as false
}

# parity_inputs (parity_test.rego) are also run through the compiled wasm by scripts/test-policy.sh.
fast_path_inputs := parity_inputs

parity_inputs[concat("", ["bench: ", note])] := doc if some note, doc in bench_like_inputs

test_fast_path_changes_no_decision[note] if {
	some note, doc in fast_path_inputs
	decide(doc) == reference_decision(doc)
}

# The fast path is taken for the common documents, and only for documents it may allow.
fast_taken contains note if {
	some note, doc in fast_path_inputs
	data.pgward._fast with input as doc
}

test_fast_path_is_taken if {
	count(fast_taken) >= 20
	every note in fast_taken {
		decide(fast_path_inputs[note]).allow == true
		decide(fast_path_inputs[note]).alerts == []
	}
}

test_fast_path_taken_for_bench_inputs[note] if {
	some note, _ in bench_like_inputs
	concat("", ["bench: ", note]) in fast_taken
}

test_plain_statement_not_judged if {
	statements := data.pgward._statements with input as query("alice", [stmt({}), select_from("public", "orders")])
	count(statements) == 0
}

test_non_plain_statement_judged if {
	statements := data.pgward._statements with input as query("alice", [stmt({}), select_from("public", "credit_cards")])
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

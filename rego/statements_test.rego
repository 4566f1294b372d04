package pgward_test

# SQL rules, one table per rule. Every case runs as a simple Query unless it says otherwise.

# --- SQL that does not parse, Bind, PREPARE / EXECUTE ----------------------------------------

test_parse_error_denied if {
	d := decide(object.union(query("alice", []), {"parse_error": "syntax error at or near \"DELET\""}))
	d.allow == false
	d.reasons == ["SQL could not be parsed: syntax error at or near \"DELET\""]
}

test_long_parse_error_shortened if {
	d := decide(object.union(query("alice", []), {"parse_error": concat("", [x | some _ in numbers.range(1, 300); x := "e"])}))
	count(d.reasons[0]) == count("SQL could not be parsed: ") + 203
}

prepared(statements, parse_error) := {"name": "s1", "sql": "(see statements)", "statements": statements, "parse_error": parse_error}

bind_cases := [
	{"note": "safe statement", "prepared": prepared([stmt({})], null), "reasons": []},
	{
		"note": "DELETE without WHERE",
		"prepared": prepared([delete_from("public", "orders", false)], null),
		"reasons": ["DELETE without WHERE on public.orders"],
	},
	{
		"note": "statement that did not parse",
		"prepared": prepared([], "syntax error at end of input"),
		"reasons": ["bound statement could not be parsed: syntax error at end of input"],
	},
	{"note": "statement unknown to pgward", "prepared": null, "reasons": ["Bind refers to a prepared statement unknown to pgward"]},
	{
		"note": "statement without classification",
		"prepared": {"name": "s1", "sql": "DELETE FROM t", "parse_error": null},
		"reasons": ["Bind refers to a prepared statement unknown to pgward"],
	},
	{
		"note": "statement without parse_error",
		"prepared": {"name": "s1", "sql": "DELETE FROM t", "statements": []},
		"reasons": ["Bind refers to a prepared statement unknown to pgward"],
	},
	{
		"note": "dangerous function",
		"prepared": prepared([stmt({"functions": ["pg_catalog.pg_read_file"]})], null),
		"reasons": ["function pg_catalog.pg_read_file() is reserved for admins"],
	},
]

test_bind[tc.note] if {
	some tc in bind_cases
	d := decide(bind("alice", tc.prepared))
	d.reasons == tc.reasons
	allowed := count(tc.reasons) == 0
	d.allow == allowed
}

test_bind_read_only_user if {
	d := decide(bind("analyst", prepared([update_of("public", "orders", true)], null)))
	d.reasons == ["read-only user analyst cannot write to public.orders"]
}

test_parse_message_judged_like_query if {
	doc := object.union(query("alice", [delete_from(null, "orders", false)]), {"message": {"type": "Parse", "statement_name": "", "sql": "DELETE FROM orders"}})
	decide(doc).reasons == ["DELETE without WHERE on orders"]
}

execute(name, inner) := stmt({"command": "EXECUTE", "node": "ExecuteStmt", "read_only": false, "prepared": {"kind": "execute", "name": name, "inner": inner}})

prepare(name, inner) := stmt({"command": "PREPARE", "node": "PrepareStmt", "read_only": false, "prepared": {"kind": "prepare", "name": name, "inner": inner}})

prepared_cases := [
	{"note": "EXECUTE of a safe statement", "user": "alice", "stmt": execute("p", stmt({})), "reasons": []},
	{
		"note": "EXECUTE of DELETE without WHERE",
		"user": "alice",
		"stmt": execute("p", delete_from("public", "orders", false)),
		"reasons": ["DELETE without WHERE on public.orders"],
	},
	{
		"note": "EXECUTE of a statement unknown to pgward",
		"user": "alice",
		"stmt": stmt({"command": "EXECUTE", "node": "ExecuteStmt", "prepared": {"kind": "execute", "name": "p"}}),
		"reasons": ["EXECUTE p: prepared statement unknown to pgward"],
	},
	{
		"note": "PREPARE without classification",
		"user": "alice",
		"stmt": stmt({"command": "PREPARE", "node": "PrepareStmt", "prepared": {"kind": "prepare", "name": "p"}}),
		"reasons": ["PREPARE p: prepared statement unknown to pgward"],
	},
	{
		"note": "PREPARE of DROP",
		"user": "alice",
		"stmt": prepare("p", stmt({"command": "DROP TABLE", "node": "DropStmt", "ddl": true, "read_only": false, "relations": [rel("public", "orders", "ddl")]})),
		"reasons": ["DROP TABLE public.orders is reserved for admins"],
	},
	{
		"note": "nested inner statement",
		"user": "alice",
		"stmt": execute("p", prepare("q", delete_from("public", "orders", false))),
		"reasons": ["DELETE without WHERE on public.orders"],
	},
	{"note": "PREPARE of SELECT by a read-only user", "user": "analyst", "stmt": prepare("p", stmt({})), "reasons": []},
	{"note": "EXECUTE of SELECT by a read-only user", "user": "analyst", "stmt": execute("p", stmt({})), "reasons": []},
	{
		"note": "EXECUTE of INSERT by a read-only user",
		"user": "analyst",
		"stmt": execute("p", stmt({"command": "INSERT", "node": "InsertStmt", "read_only": false, "relations": [rel(null, "t", "write")]})),
		"reasons": ["read-only user analyst cannot write to t"],
	},
	{
		"note": "DEALLOCATE by a read-only user",
		"user": "analyst",
		"stmt": stmt({"command": "DEALLOCATE", "node": "DeallocateStmt", "read_only": false, "prepared": {"kind": "deallocate", "name": null}}),
		"reasons": [],
	},
]

test_prepared[tc.note] if {
	some tc in prepared_cases
	d := decide(query(tc.user, [tc.stmt]))
	d.reasons == tc.reasons
	allowed := count(tc.reasons) == 0
	d.allow == allowed
}

# --- read-only principals ---------------------------------------------------------------------

ro_denied := [
	{
		"note": "INSERT",
		"stmt": stmt({"command": "INSERT", "node": "InsertStmt", "read_only": false, "relations": [rel("public", "orders", "write")]}),
		"reason": "cannot write to public.orders",
	},
	{"note": "UPDATE", "stmt": update_of("public", "orders", true), "reason": "cannot write to public.orders"},
	{"note": "DELETE", "stmt": delete_from("public", "orders", true), "reason": "cannot write to public.orders"},
	{
		"note": "MERGE",
		"stmt": stmt({"command": "MERGE", "node": "MergeStmt", "read_only": false, "relations": [rel(null, "t", "write"), rel(null, "s", "read")]}),
		"reason": "cannot write to t",
	},
	{
		"note": "data-modifying CTE in a SELECT",
		"stmt": stmt({"read_only": false, "relations": [rel(null, "audit", "write"), rel(null, "t", "read")]}),
		"reason": "cannot write to audit",
	},
	{
		"note": "SELECT INTO marked read-only by mistake still writes",
		"stmt": stmt({"relations": [rel(null, "copy_of_t", "write")]}),
		"reason": "cannot write to copy_of_t",
	},
	{
		"note": "CREATE TABLE",
		"stmt": stmt({"command": "CREATE TABLE", "node": "CreateStmt", "ddl": true, "read_only": false, "relations": [rel(null, "t", "ddl")]}),
		"reason": "cannot run CREATE TABLE on t",
	},
	{
		"note": "SET ROLE",
		"stmt": stmt({"command": "SET", "node": "VariableSetStmt", "read_only": false, "role_change": true, "settings": [setting("role", "postgres", "set")]}),
		"reason": "cannot change role",
	},
	{
		"note": "dangerous function marked read-only",
		"stmt": stmt({"functions": ["pg_catalog.pg_ls_dir", "now"]}),
		"reason": "cannot call pg_catalog.pg_ls_dir()",
	},
	{
		"note": "side-effecting function",
		"stmt": stmt({"functions": ["nextval"], "read_only": false}),
		"reason": "cannot run SELECT: it is not read-only",
	},
	{
		"note": "COPY FROM STDIN",
		"stmt": stmt({"command": "COPY", "node": "CopyStmt", "read_only": false, "relations": [rel("public", "orders", "write")], "copy": copy_info("from", {})}),
		"reason": "cannot run COPY FROM on public.orders",
	},
	{
		"note": "BEGIN READ WRITE",
		"stmt": stmt({"command": "BEGIN", "node": "TransactionStmt", "transaction": {"kind": "BEGIN", "mode": "read_write"}}),
		"reason": "cannot start a READ WRITE transaction",
	},
	{
		"note": "SET TRANSACTION READ WRITE",
		"stmt": stmt({"command": "SET", "node": "VariableSetStmt", "read_only": false, "transaction": {"kind": "SET_TRANSACTION", "mode": "read_write"}}),
		"reason": "cannot start a READ WRITE transaction",
	},
	{
		"note": "LISTEN is not read-only",
		"stmt": stmt({"command": "LISTEN", "node": "ListenStmt", "read_only": false}),
		"reason": "cannot run LISTEN: it is not read-only",
	},
]

test_read_only_denied[tc.note] if {
	some tc in ro_denied
	some user in ["analyst", "readonly"]
	d := decide(query(user, [tc.stmt]))
	d.allow == false
	d.reasons[0] == concat("", ["read-only user ", user, " ", tc.reason])
}

ro_setting_denied := [
	{"note": "SET default_transaction_read_only = off", "setting": setting("default_transaction_read_only", "off", "set"), "reason": "set default_transaction_read_only to off"},
	{"note": "SET default_transaction_read_only = false", "setting": setting("default_transaction_read_only", "false", "set"), "reason": "set default_transaction_read_only to false"},
	{"note": "SET transaction_read_only = 0", "setting": setting("transaction_read_only", "0", "set"), "reason": "set transaction_read_only to 0"},
	{"note": "SET transaction_read_only = no", "setting": setting("Transaction_Read_Only", "no", "set"), "reason": "set transaction_read_only to no"},
	{"note": "SET to a non-constant value", "setting": setting("default_transaction_read_only", null, "set"), "reason": "set default_transaction_read_only to a non-constant value"},
	{"note": "SET to a prefix of false", "setting": setting("default_transaction_read_only", "fals", "set"), "reason": "set default_transaction_read_only to fals"},
	{"note": "SET to a literal that is no boolean (kept out of the message)", "setting": setting("default_transaction_read_only", "hunter2", "set"), "reason": "set default_transaction_read_only to a value other than on"},
	{"note": "RESET default_transaction_read_only", "setting": setting("default_transaction_read_only", null, "reset"), "reason": "RESET default_transaction_read_only"},
	{"note": "RESET ALL", "setting": setting("all", null, "reset"), "reason": "RESET all"},
	{"note": "SET SESSION CHARACTERISTICS", "setting": setting("session characteristics", null, "set"), "reason": "set session characteristics to a non-constant value"},
	{"note": "set_config", "setting": setting("default_transaction_read_only", "off", "set_config"), "reason": "set default_transaction_read_only to off"},
	{"note": "set_config with a non-constant name", "setting": setting("*", "off", "set_config"), "reason": "call set_config with a non-constant setting name"},
]

test_read_only_settings_denied[tc.note] if {
	some tc in ro_setting_denied
	node := {"set": "VariableSetStmt", "reset": "VariableSetStmt", "set_config": "SelectStmt"}[tc.setting.via]
	d := decide(query("analyst", [stmt({"command": "SET", "node": node, "read_only": false, "settings": [tc.setting]})]))
	d.allow == false
	d.reasons[0] == concat("", ["read-only user analyst cannot ", tc.reason])
}

ro_allowed := [
	{"note": "SELECT", "stmt": select_from("public", "orders")},
	{"note": "COPY TO STDOUT", "stmt": stmt({"command": "COPY", "node": "CopyStmt", "relations": [rel(null, "t", "read")], "copy": copy_info("to", {})})},
	{"note": "BEGIN", "stmt": stmt({"command": "BEGIN", "node": "TransactionStmt", "transaction": {"kind": "BEGIN", "mode": null}})},
	{"note": "BEGIN READ ONLY", "stmt": stmt({"command": "BEGIN", "node": "TransactionStmt", "read_only": false, "transaction": {"kind": "BEGIN", "mode": "read_only"}})},
	{"note": "COMMIT", "stmt": stmt({"command": "COMMIT", "node": "TransactionStmt", "read_only": false, "transaction": {"kind": "COMMIT", "mode": null}})},
	{"note": "SET search_path", "stmt": stmt({"command": "SET", "node": "VariableSetStmt", "read_only": false, "settings": [setting("search_path", "app", "set")]})},
	{"note": "SET default_transaction_read_only = on", "stmt": stmt({"command": "SET", "node": "VariableSetStmt", "read_only": false, "settings": [setting("default_transaction_read_only", "on", "set")]})},
	{"note": "SET transaction_read_only = ' TRUE '", "stmt": stmt({"command": "SET", "node": "VariableSetStmt", "read_only": false, "settings": [setting("transaction_read_only", " TRUE ", "set")]})},
	{"note": "SHOW", "stmt": stmt({"command": "SHOW", "node": "VariableShowStmt"})},
]

test_read_only_allowed[tc.note] if {
	some tc in ro_allowed
	d := decide(query("analyst", [tc.stmt]))
	d.allow == true
}

test_ordinary_user_may_turn_read_only_off if {
	decide(query("alice", [stmt({"command": "SET", "node": "VariableSetStmt", "read_only": false, "settings": [setting("default_transaction_read_only", "off", "set")]})])).allow == true
}

# --- DELETE / UPDATE without WHERE ----------------------------------------------------------

unbounded_cases := [
	{"note": "DELETE without WHERE", "stmt": delete_from("public", "orders", false), "reason": "DELETE without WHERE on public.orders"},
	{"note": "UPDATE without WHERE", "stmt": update_of(null, "orders", false), "reason": "UPDATE without WHERE on orders"},
	{"note": "lower-case command", "stmt": object.union(delete_from("app", "t", false), {"command": "delete"}), "reason": "DELETE without WHERE on app.t"},
	{"note": "has_where null on DELETE", "stmt": delete_from("public", "orders", null), "reason": "DELETE without WHERE on public.orders"},
	{"note": "no relation", "stmt": object.union(delete_from("public", "orders", false), {"relations": []}), "reason": "DELETE without WHERE"},
	{
		"note": "EXPLAIN ANALYZE DELETE",
		"stmt": object.union(delete_from("public", "orders", false), {"command": "EXPLAIN", "node": "ExplainStmt"}),
		"reason": "EXPLAIN running a DELETE or UPDATE without WHERE on public.orders",
	},
	{
		"note": "COPY (DELETE … RETURNING) TO",
		"stmt": object.union(delete_from("public", "orders", false), {"command": "COPY", "node": "CopyStmt"}),
		"reason": "COPY running a DELETE or UPDATE without WHERE on public.orders",
	},
	{
		"note": "data-modifying CTE",
		"stmt": object.union(update_of(null, "orders", false), {"command": "SELECT", "node": "SelectStmt"}),
		"reason": "SELECT running a DELETE or UPDATE without WHERE on orders",
	},
]

test_unbounded_write_denied[tc.note] if {
	some tc in unbounded_cases
	d := decide(query("alice", [tc.stmt]))
	d.allow == false
	d.reasons == [tc.reason]
	d.alerts == []
}

test_unbounded_write_break_glass[tc.note] if {
	some tc in unbounded_cases
	d := decide(query("oncall", [tc.stmt])) with data.pgward.break_glass as ["oncall"]
	d.allow == true
	d.alerts == [{"rule": "break_glass", "severity": "high", "message": concat("", ["break-glass user oncall ran ", tc.reason])}]
}

test_unbounded_write_not_lifted_for_admins if {
	d := decide(query("root", [delete_from("public", "orders", false)])) with data.pgward.admins as ["root"]
	d.allow == false
}

test_bounded_writes_allowed[note] if {
	some note, s in {"DELETE": delete_from("public", "orders", true), "UPDATE": update_of("public", "orders", true)}
	decide(query("alice", [s])).allow == true
}

# --- admin-only actions ---------------------------------------------------------------------

ddl(command, node, relations) := stmt({"command": command, "node": node, "ddl": true, "read_only": false, "relations": relations})

utility(command, node, u) := stmt({"command": command, "node": node, "ddl": true, "read_only": false, "utility": u})

admin_only_cases := [
	{"note": "DROP TABLE", "stmt": ddl("DROP TABLE", "DropStmt", [rel("public", "orders", "ddl")]), "action": "DROP TABLE public.orders"},
	{"note": "DROP of several tables", "stmt": ddl("DROP TABLE", "DropStmt", [rel(null, "b", "ddl"), rel(null, "a", "ddl")]), "action": "DROP TABLE a, b"},
	{"note": "DROP DATABASE", "stmt": ddl("DROP DATABASE", "DropdbStmt", []), "action": "DROP DATABASE"},
	{"note": "ALTER TABLE", "stmt": ddl("ALTER TABLE", "AlterTableStmt", [rel("public", "orders", "ddl")]), "action": "ALTER TABLE public.orders"},
	{"note": "ALTER ROLE", "stmt": ddl("ALTER ROLE", "AlterRoleStmt", []), "action": "ALTER ROLE"},
	{"note": "TRUNCATE", "stmt": stmt({"command": "TRUNCATE", "node": "TruncateStmt", "read_only": false, "relations": [rel(null, "orders", "write")]}), "action": "TRUNCATE orders"},
	{"note": "DROP recognised by node", "stmt": ddl("UNKNOWN", "DropStmt", []), "action": "UNKNOWN"},
	{"note": "DO", "stmt": utility("DO", "DoStmt", "do"), "action": "DO"},
	{"note": "CREATE FUNCTION", "stmt": utility("CREATE FUNCTION", "CreateFunctionStmt", "create_function"), "action": "CREATE FUNCTION"},
	{"note": "CREATE PROCEDURE", "stmt": utility("CREATE PROCEDURE", "CreateFunctionStmt", "create_procedure"), "action": "CREATE PROCEDURE"},
	{"note": "CREATE EXTENSION", "stmt": utility("CREATE EXTENSION", "CreateExtensionStmt", "create_extension"), "action": "CREATE EXTENSION"},
	{"note": "CREATE RULE", "stmt": utility("CREATE RULE", "RuleStmt", "create_rule"), "action": "CREATE RULE"},
	{"note": "CREATE TRIGGER", "stmt": utility("CREATE TRIGGER", "CreateTrigStmt", "create_trigger"), "action": "CREATE TRIGGER"},
	{"note": "LOAD", "stmt": utility("LOAD", "LoadStmt", "load"), "action": "LOAD"},
	{"note": "GRANT", "stmt": utility("GRANT", "GrantStmt", "grant"), "action": "GRANT"},
	{"note": "REVOKE", "stmt": utility("REVOKE", "GrantStmt", "revoke"), "action": "REVOKE"},
	{"note": "DO recognised by node", "stmt": utility("DO", "DoStmt", null), "action": "DO"},
	{"note": "GRANT role recognised by node", "stmt": utility("GRANT ROLE", "GrantRoleStmt", null), "action": "GRANT ROLE"},
	{
		"note": "COPY PROGRAM",
		"stmt": stmt({"command": "COPY", "node": "CopyStmt", "read_only": false, "copy": copy_info("to", {"stdio": false, "program": true, "filename": null})}),
		"action": "COPY ... PROGRAM",
	},
	{
		"note": "COPY FROM a server file",
		"stmt": stmt({"command": "COPY", "node": "CopyStmt", "read_only": false, "copy": copy_info("from", {"stdio": false, "filename": "/etc/passwd"})}),
		"action": "COPY with a server-side file",
	},
	{
		"note": "SET ROLE",
		"stmt": stmt({"command": "SET", "node": "VariableSetStmt", "read_only": false, "role_change": true}),
		"action": "role change (SET)",
	},
	{
		"note": "RESET ROLE setting without the role_change flag",
		"stmt": stmt({"command": "RESET", "node": "VariableSetStmt", "read_only": false, "settings": [setting("role", null, "reset")]}),
		"action": "role change (RESET ROLE)",
	},
	{
		"note": "SET SESSION AUTHORIZATION setting",
		"stmt": stmt({"command": "SET", "node": "VariableSetStmt", "read_only": false, "settings": [setting("session_authorization", "postgres", "set")]}),
		"action": "role change (SET SESSION AUTHORIZATION)",
	},
	{
		"note": "set_config('role')",
		"stmt": stmt({"read_only": false, "functions": ["set_config"], "settings": [setting("role", "postgres", "set_config")]}),
		"action": "role change (set_config('role'))",
	},
]

test_admin_only_denied[tc.note] if {
	some tc in admin_only_cases
	d := decide(query("alice", [tc.stmt]))
	d.allow == false
	concat("", [tc.action, " is reserved for admins"]) in d.reasons
}

test_admin_only_allowed_for_admins[tc.note] if {
	some tc in admin_only_cases
	d := decide(query("root", [tc.stmt])) with data.pgward.admins as ["root"]
	d.allow == true
	{"rule": "admin_override", "severity": "medium", "message": concat("", ["admin root ran ", tc.action])} in d.alerts
}

test_extra_admin_only_utility if {
	d := decide(query("alice", [utility("CREATE PUBLICATION", "CreatePublicationStmt", "create_publication")])) with data.pgward.admin_only_utilities as ["create_publication"]
	d.reasons == ["CREATE PUBLICATION is reserved for admins"]
}

test_ordinary_copy_allowed[tc.note] if {
	some tc in [
		{"note": "COPY FROM STDIN", "copy": copy_info("from", {})},
		{"note": "COPY TO STDOUT", "copy": copy_info("to", {})},
	]
	decide(query("alice", [stmt({"command": "COPY", "node": "CopyStmt", "read_only": false, "copy": tc.copy})])).allow == true
}

test_ordinary_ddl_allowed if {
	decide(query("alice", [ddl("CREATE TABLE", "CreateStmt", [rel(null, "t", "ddl")])])).allow == true
}

dangerous_function_cases := [
	{"note": "pg_read_file", "fn": "pg_read_file"},
	{"note": "schema-qualified", "fn": "pg_catalog.pg_read_file"},
	{"note": "quoted and upper-case", "fn": "\"PG_CATALOG\".\"PG_READ_FILE\""},
	{"note": "other schema", "fn": "evil.pg_read_file"},
	{"note": "pg_read_binary_file", "fn": "pg_read_binary_file"},
	{"note": "pg_ls_dir", "fn": "pg_ls_dir"},
	{"note": "pg_ls_waldir by prefix", "fn": "pg_ls_waldir"},
	{"note": "pg_stat_file", "fn": "pg_stat_file"},
	{"note": "lo_import", "fn": "lo_import"},
	{"note": "lo_export", "fn": "lo_export"},
	{"note": "dblink", "fn": "dblink"},
	{"note": "dblink_exec by prefix", "fn": "public.dblink_exec"},
	{"note": "pg_terminate_backend", "fn": "pg_terminate_backend"},
	{"note": "pg_cancel_backend", "fn": "pg_cancel_backend"},
	{"note": "pg_reload_conf", "fn": "pg_reload_conf"},
	{"note": "pg_rotate_logfile", "fn": "pg_rotate_logfile"},
	{"note": "query_to_xml runs SQL from a string", "fn": "query_to_xml"},
	{"note": "configured in data.json", "fn": "pg_logical_emit_message"},
]

test_dangerous_function_denied[tc.note] if {
	some tc in dangerous_function_cases
	d := decide(query("alice", [stmt({"functions": ["now", tc.fn]})]))
	d.allow == false
	d.reasons == [concat("", ["function ", tc.fn, "() is reserved for admins"])]
}

test_dangerous_function_prefix_from_data if {
	d := decide(query("alice", [stmt({"functions": ["my_admin_reset"]})])) with data.pgward.dangerous_function_prefixes as ["my_admin_"]
	d.reasons == ["function my_admin_reset() is reserved for admins"]
}

test_ordinary_functions_allowed if {
	decide(query("alice", [stmt({"functions": ["now", "pg_catalog.count", "lower", "pg_sleep"]})])).allow == true
}

test_function_call[tc.note] if {
	some tc in [
		{
			"note": "ordinary user",
			"user": "alice",
			"reasons": ["fastpath FunctionCall (function OID 2560) is reserved for admins"],
			"alerts": [],
		},
		{
			"note": "admin",
			"user": "root",
			"reasons": [],
			"alerts": [{"rule": "admin_override", "severity": "medium", "message": "admin root ran fastpath FunctionCall (function OID 2560)"}],
		},
	]
	doc := object.union(query(tc.user, []), {"message": {"type": "FunctionCall", "function_oid": 2560, "arguments": []}})
	d := decide(doc) with data.pgward.admins as ["root"]
	d.reasons == tc.reasons
	d.alerts == tc.alerts
	allowed := count(tc.reasons) == 0
	d.allow == allowed
}

test_function_call_without_oid_denied if {
	doc := object.union(query("alice", []), {"message": {"type": "FunctionCall"}})
	decide(doc).reasons == ["fastpath FunctionCall (function OID unknown) is reserved for admins"]
}

# --- sensitive tables -----------------------------------------------------------------------

sensitive_cases := [
	{
		"note": "SELECT from public.credit_cards",
		"stmt": select_from("public", "credit_cards"),
		"alerts": [{"rule": "sensitive_table", "severity": "medium", "message": "SELECT reads sensitive table public.credit_cards"}],
	},
	{
		"note": "unqualified name",
		"stmt": select_from(null, "Credit_Cards"),
		"alerts": [{"rule": "sensitive_table", "severity": "medium", "message": "SELECT reads sensitive table public.credit_cards"}],
	},
	{
		"note": "UPDATE of public.users",
		"stmt": update_of("public", "users", true),
		"alerts": [{"rule": "sensitive_table", "severity": "high", "message": "UPDATE writes sensitive table public.users"}],
	},
	{
		"note": "ALTER of public.users (with admin override)",
		"stmt": ddl("ALTER TABLE", "AlterTableStmt", [rel("public", "users", "ddl")]),
		"alerts": [
			{"rule": "sensitive_table", "severity": "high", "message": "ALTER TABLE changes sensitive table public.users"},
			{"rule": "admin_override", "severity": "medium", "message": "admin root ran ALTER TABLE public.users"},
		],
	},
	{"note": "same name in another schema", "stmt": select_from("audit", "users"), "alerts": []},
	{"note": "other table", "stmt": select_from("public", "orders"), "alerts": []},
]

test_sensitive_tables[tc.note] if {
	some tc in sensitive_cases
	d := decide(query("root", [tc.stmt])) with data.pgward.admins as ["root"]
	d.allow == true
	d.alerts == tc.alerts
}

test_sensitive_table_alert_on_denied_statement if {
	d := decide(query("analyst", [update_of("public", "credit_cards", true)]))
	d.allow == false
	d.alerts == [{"rule": "sensitive_table", "severity": "high", "message": "UPDATE writes sensitive table public.credit_cards"}]
}

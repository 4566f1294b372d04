package pgward

# SQL rules. They judge every statement of the message (_statements): the statements of a Query
# or Parse, the statement a Bind binds, and what PREPARE / EXECUTE stand for.

_denials contains [1, "statement classification is malformed"] if {
	some s in _statements
	not _valid_statement(s)
}

# SQL that PostgreSQL's parser rejects is never guessed at.
_denials contains [20, msg] if {
	is_string(input.parse_error)
	msg := concat("", ["SQL could not be parsed: ", _shorten(input.parse_error)])
}

_denials contains [20, msg] if {
	input.message.type == "Bind"
	is_string(input.message.statement.parse_error)
	msg := concat("", ["bound statement could not be parsed: ", _shorten(input.message.statement.parse_error)])
}

_shorten(x) := concat("", [substring(x, 0, 200), "..."]) if count(x) > 200

else := x

_denials contains [21, "Bind refers to a prepared statement unknown to pgward"] if {
	input.message.type == "Bind"
	not _bind_has_statement
}

_bind_has_statement if {
	is_array(input.message.statement.statements)
	_string_or_null(input.message.statement.parse_error)
}

_denials contains [21, msg] if {
	some s in _statements
	s.prepared.kind in {"prepare", "execute"}
	not _has_inner(s)
	msg := concat("", [upper(s.prepared.kind), " ", _text(s.prepared.name), ": prepared statement unknown to pgward"])
}

_has_inner(s) if is_object(s.prepared.inner)

# Read-only principals: nothing that writes, changes schema or roles, or has side effects.

# Optional (data.pgward.read_only_deny_user_functions, off by default): read-only principals may
# call only built-in functions (pg_catalog names, data.pgward_builtins generated from pg_proc).
# A user-defined function can write whatever its owner may write (SECURITY DEFINER), or change
# settings from inside, where no classifier sees it.
_denials contains [32, msg] if {
	some s in _statements
	some f in _user_functions(s)
	msg := _read_only_reason(concat("", ["cannot call user-defined function ", f, "()"]))
}

_user_functions(s) := {f | some f in s.functions; not _builtin_function(f)} if {
	data.pgward.read_only_deny_user_functions == true
	_is_read_only_user
}

_has_user_function(s) if {
	data.pgward.read_only_deny_user_functions == true
	_is_read_only_user
	some f in s.functions
	not _builtin_function(f)
}

_builtin_function(f) if data.pgward_builtins.functions[f] == true

_builtin_function(f) if {
	startswith(f, "pg_catalog.")
	data.pgward_builtins.functions[substring(f, 11, -1)] == true
}

_denials contains [31, msg] if {
	_is_read_only_user
	some s in _statements
	msg := _read_only_violation(s)
}

_read_only_violation(s) := _read_only_reason("cannot start a READ WRITE transaction") if {
	s.transaction.mode == "read_write"
} else := _read_only_reason(concat("", ["cannot run COPY FROM", _on_targets(s)])) if {
	s.copy.direction == "from"
} else := _read_only_reason("cannot change role") if {
	s.role_change == true
} else := _read_only_reason(concat("", ["cannot run ", _command(s), _on_targets(s)])) if {
	s.ddl == true
} else := _read_only_reason(concat("", ["cannot write to ", _targets(s)])) if {
	some r in s.relations
	r.access != "read"
} else := _read_only_reason(concat("", ["cannot call ", concat(", ", sort(names))])) if {
	names := {concat("", [f, "()"]) | some f in s.functions; _is_dangerous_function(f)}
	count(names) > 0
} else := _read_only_reason(concat("", ["cannot run ", _command(s), ": it is not read-only"])) if {
	s.read_only == false
	not _read_only_exempt(s)
}

_read_only_reason(what) := concat("", ["read-only user ", _user, " ", what])

# Statements the classifier does not call read-only but that cannot write by themselves:
# transaction control (READ WRITE is caught above), SET/SHOW of ordinary settings (turning
# read-only off is caught below), PREPARE/EXECUTE/DEALLOCATE (what they stand for is judged).
_read_only_exempt(s) if {
	is_object(s.transaction)
	s.transaction.mode != "read_write"
}

_read_only_exempt(s) if {
	s.node in {"VariableSetStmt", "VariableShowStmt"}
	s.role_change == false
}

_read_only_exempt(s) if s.prepared.kind in {"prepare", "execute", "deallocate"}

_read_only_settings := {"default_transaction_read_only", "transaction_read_only"}

# Unique prefixes of PostgreSQL's boolean spellings for true; anything else (off, false, 0, no,
# a non-constant value, RESET) may turn read-only mode off.
_true_values := {"on", "true", "tru", "tr", "t", "yes", "ye", "y", "1"}

_turns_read_only_on(value) if lower(trim_space(value)) in _true_values

_denials contains [30, msg] if {
	_is_read_only_user
	some s in _statements
	some x in s.settings
	_turns_read_only_off(x)
	msg := _read_only_reason(concat("", ["cannot ", _setting_change(x)]))
}

_turns_read_only_off(x) if {
	lower(x.name) in _read_only_settings
	not _turns_read_only_on(x.value)
}

# RESET ALL, SET SESSION CHARACTERISTICS AS TRANSACTION ..., set_config with a name that is not
# a constant (the classifier records it as "*").
_turns_read_only_off(x) if lower(x.name) in {"all", "session characteristics", "*"}

_setting_change(x) := "call set_config with a non-constant setting name" if {
	x.name == "*"
} else := concat("", ["RESET ", lower(x.name)]) if {
	x.via == "reset"
} else := concat("", ["set ", lower(x.name), " to ", x.value]) if {
	is_string(x.value)
} else := concat("", ["set ", lower(x.name), " to a non-constant value"])

# DELETE / UPDATE of every row: break-glass users only.

_unbounded_write(s) if {
	_unbounded_command(upper(s.command))
	not _has_where(s)
}

# A DELETE or UPDATE without WHERE inside another statement: a data-modifying CTE,
# EXPLAIN ANALYZE, COPY (DELETE … RETURNING …) TO.
_unbounded_write(s) if s.has_where == false

_unbounded_what(s) := concat("", [_command(s), " without WHERE"]) if {
	_unbounded_command(upper(s.command))
} else := concat("", [_command(s), " running a DELETE or UPDATE without WHERE"])

_unbounded_command("DELETE")

_unbounded_command("UPDATE")

_has_where(s) if s.has_where == true

_denials contains [40, msg] if {
	not _is_break_glass
	some s in _statements
	_unbounded_write(s)
	msg := concat("", [_unbounded_what(s), _on_targets(s)])
}

_alert_set contains {"rule": "break_glass", "severity": "high", "message": msg} if {
	_is_break_glass
	some s in _statements
	_unbounded_write(s)
	msg := concat("", ["break-glass user ", _user, " ran ", _unbounded_what(s), _on_targets(s)])
}

# Actions reserved for admins. Denied for everybody else; an alert when an admin takes one.

_denials contains [50, concat("", [action, " is reserved for admins"])] if {
	not _is_admin
	some action in _admin_only_actions
}

_alert_set contains {"rule": "admin_override", "severity": "medium", "message": msg} if {
	_is_admin
	some action in _admin_only_actions
	msg := concat("", ["admin ", _user, " ran ", action])
}

# DROP ..., ALTER ..., TRUNCATE
_admin_only_actions contains concat(" ", [_command(s), _targets(s)]) if {
	some s in _statements
	_destructive(s)
	_targets(s) != ""
}

_admin_only_actions contains _command(s) if {
	some s in _statements
	_destructive(s)
	_targets(s) == ""
}

_destructive(s) if startswith(upper(s.command), "DROP")

_destructive(s) if startswith(upper(s.command), "ALTER")

_destructive(s) if upper(s.command) == "TRUNCATE"

_destructive(s) if startswith(s.node, "Drop")

_destructive(s) if startswith(s.node, "Alter")

_destructive(s) if s.node == "TruncateStmt"

# DO, CREATE FUNCTION, ALTER SYSTEM, LOAD, CREATE EXTENSION, CREATE RULE, CREATE TRIGGER, GRANT, ...
_admin_only_actions contains upper(replace(s.utility, "_", " ")) if {
	some s in _statements
	_admin_only_utility(s)
}

_admin_only_utility(s) if _admin_only_utility_name(s.utility)

# The same statements recognised by parse tree node, should a classifier miss the utility.
_admin_only_actions contains _command(s) if {
	some s in _statements
	_admin_only_node(s.node)
	not _admin_only_utility(s)
}

_admin_only_utility_name(u) if _builtin_admin_only_utility(u)

_admin_only_utility_name(u) if u in data.pgward.admin_only_utilities

_builtin_admin_only_utility("do")

_builtin_admin_only_utility("create_function")

_builtin_admin_only_utility("create_procedure")

_builtin_admin_only_utility("alter_system")

_builtin_admin_only_utility("load")

_builtin_admin_only_utility("create_extension")

_builtin_admin_only_utility("create_rule")

_builtin_admin_only_utility("create_trigger")

_builtin_admin_only_utility("create_event_trigger")

_builtin_admin_only_utility("grant")

_builtin_admin_only_utility("revoke")

_admin_only_node("DoStmt")

_admin_only_node("CreateFunctionStmt")

_admin_only_node("AlterSystemStmt")

_admin_only_node("LoadStmt")

_admin_only_node("CreateExtensionStmt")

_admin_only_node("RuleStmt")

_admin_only_node("CreateTrigStmt")

_admin_only_node("CreateEventTrigStmt")

_admin_only_node("GrantStmt")

_admin_only_node("GrantRoleStmt")

# COPY ... PROGRAM and COPY with a file on the database server.
_admin_only_actions contains "COPY ... PROGRAM" if {
	some s in _statements
	s.copy.program == true
}

_admin_only_actions contains concat("", ["COPY with server-side file ", s.copy.filename]) if {
	some s in _statements
	is_string(s.copy.filename)
}

# Role changes: SET ROLE, SET SESSION AUTHORIZATION, RESET ROLE, set_config('role', ...).
_admin_only_actions contains concat("", ["role change (", _command(s), ")"]) if {
	some s in _statements
	s.role_change == true
}

_admin_only_actions contains concat("", ["role change (", _setting_label(x), ")"]) if {
	some s in _statements
	some x in s.settings
	lower(x.name) in _role_settings
}

_setting_label(x) := concat("", ["set_config('", lower(x.name), "')"]) if {
	x.via == "set_config"
} else := concat(" ", [upper(x.via), upper(replace(lower(x.name), "_", " "))])

# Functions with side effects outside the session: files, large objects, other backends,
# other servers, server configuration, SQL hidden in strings.
_admin_only_actions contains concat("", ["function ", f, "()"]) if {
	some s in _statements
	some f in s.functions
	_is_dangerous_function(f)
}

# SQL run from a string argument (ts_stat, ts_rewrite, query_to_xml, ...) that the classifier
# could not read: a non-constant argument, or text that does not parse. A constant that parses is
# classified into the calling statement, and judged by every other rule.
_admin_only_actions contains concat("", ["SQL run from a non-constant string by ", c.function, "()"]) if {
	some s in _statements
	some c in s.sql_text_calls
	c.classified == false
	not _is_dangerous_function(c.function) # query_to_xml*, dblink*: admin-only by name already
}

# FunctionCall (fastpath) names a function by OID: no SQL to analyse.
_admin_only_actions contains concat("", ["fastpath FunctionCall (function OID ", _function_oid, ")"]) if {
	input.message.type == "FunctionCall"
}

default _function_oid := "unknown"

_function_oid := _text(input.message.function_oid)

_is_dangerous_function(f) if _dangerous_function_base(_function_base(f))

_dangerous_function_base(b) if _builtin_dangerous_function(b)

_dangerous_function_base(b) if {
	some f in data.pgward.dangerous_functions
	lower(f) == b
}

_dangerous_function_base(b) if startswith(b, "dblink")

_dangerous_function_base(b) if startswith(b, "pg_ls_")

_dangerous_function_base(b) if startswith(b, "pg_read_")

_dangerous_function_base(b) if startswith(b, "pg_file_")

_dangerous_function_base(b) if {
	some p in data.pgward.dangerous_function_prefixes
	startswith(b, lower(p))
}

_builtin_dangerous_function("pg_read_file")

_builtin_dangerous_function("pg_read_binary_file")

_builtin_dangerous_function("pg_ls_dir")

_builtin_dangerous_function("pg_stat_file")

_builtin_dangerous_function("lo_import")

_builtin_dangerous_function("lo_export")

_builtin_dangerous_function("pg_terminate_backend")

_builtin_dangerous_function("pg_cancel_backend")

_builtin_dangerous_function("pg_reload_conf")

_builtin_dangerous_function("pg_rotate_logfile")

_builtin_dangerous_function("pg_promote")

_builtin_dangerous_function("pg_switch_wal")

_builtin_dangerous_function("pg_create_restore_point")

_builtin_dangerous_function("pg_create_physical_replication_slot")

_builtin_dangerous_function("pg_create_logical_replication_slot")

_builtin_dangerous_function("pg_drop_replication_slot")

_builtin_dangerous_function("pg_file_write")

_builtin_dangerous_function("pg_file_rename")

_builtin_dangerous_function("pg_file_unlink")

_builtin_dangerous_function("pg_file_sync")

_builtin_dangerous_function("pg_logdir_ls")

_builtin_dangerous_function("query_to_xml")

_builtin_dangerous_function("query_to_xmlschema")

_builtin_dangerous_function("query_to_xml_and_xmlschema")

# Sensitive tables: allowed, with an alert naming the table.

_sensitive_tables := {lower(t) | some t in data.pgward.sensitive_tables}

_alert_set contains {"rule": "sensitive_table", "severity": severity, "message": msg} if {
	some s in _statements
	some r in s.relations
	some table in _sensitive_matches(r)
	severity := _sensitive_severity(r.access)
	msg := concat("", [_command(s), " ", _access_verb(r.access), " sensitive table ", table])
}

_sensitive_matches(r) := {t | t := lower(concat(".", [r.schema, r.name])); t in _sensitive_tables} if {
	is_string(r.schema)
} else := {t | some t in _sensitive_tables; _table_part(t) == lower(r.name)}

_table_part(t) := parts[count(parts) - 1] if parts := split(t, ".")

# Whether _sensitive_matches(r) is not empty, by lookups.
_sensitive_relation(r) if {
	is_string(r.schema)
	lower(concat(".", [r.schema, r.name])) in _sensitive_tables
}

# An unqualified name n matches t when _table_part(t) == n: n has no dot and t is n or ends in ".n".
_sensitive_relation(r) if {
	not is_string(r.schema)
	name := lower(r.name)
	not contains(name, ".")
	suffix := concat("", [".", name])
	some t in _sensitive_tables
	_table_named(t, name, suffix)
}

_table_named(t, name, _) if t == name

_table_named(t, _, suffix) if endswith(t, suffix)

_sensitive_severity("read") := "medium"

_sensitive_severity("write") := "high"

_sensitive_severity("ddl") := "high"

_access_verb("read") := "reads"

_access_verb("write") := "writes"

_access_verb("ddl") := "changes"

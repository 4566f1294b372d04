# METADATA
# title: SQL rules
# description: |
#   Denials and alerts about the statements of a message (lib.judged).
package pgward.statements

import data.pgward.lib

# SQL rules. They judge every statement of the message (lib.judged): the statements of a Query
# or Parse, the statement a Bind binds, and what PREPARE / EXECUTE stand for.

# SQL that PostgreSQL's parser rejects is never guessed at.
denials contains {"rule": "parse_error", "priority": 20, "message": msg} if {
	is_string(input.parse_error)
	msg := concat("", ["SQL could not be parsed: ", _shorten(input.parse_error)])
}

denials contains {"rule": "parse_error", "priority": 20, "message": msg} if {
	input.message.type == "Bind"
	is_string(input.message.statement.parse_error)
	msg := concat("", ["bound statement could not be parsed: ", _shorten(input.message.statement.parse_error)])
}

_shorten(x) := concat("", [substring(x, 0, 200), "..."]) if count(x) > 200

else := x

denials contains {"rule": "unknown_prepared_statement", "priority": 21, "message": "Bind refers to a prepared statement unknown to pgward"} if {
	input.message.type == "Bind"
	not _bind_has_statement
}

_bind_has_statement if {
	is_array(input.message.statement.statements)
	lib.string_or_null(input.message.statement.parse_error)
}

denials contains {"rule": "unknown_prepared_statement", "priority": 21, "message": msg} if {
	some s in lib.judged
	s.prepared.kind in {"prepare", "execute"}
	not _has_inner(s)
	msg := concat("", [upper(s.prepared.kind), " ", lib.text(s.prepared.name), ": prepared statement unknown to pgward"])
}

_has_inner(s) if is_object(s.prepared.inner)

# DELETE / UPDATE of every row: break-glass users only.

_unbounded_write(s) if {
	unbounded_command(upper(s.command))
	not _has_where(s)
}

# A DELETE or UPDATE without WHERE inside another statement: a data-modifying CTE,
# EXPLAIN ANALYZE, COPY (DELETE … RETURNING …) TO.
_unbounded_write(s) if s.has_where == false

_unbounded_what(s) := concat("", [lib.command(s), " without WHERE"]) if {
	unbounded_command(upper(s.command))
} else := concat("", [lib.command(s), " running a DELETE or UPDATE without WHERE"])

unbounded_command("DELETE")

unbounded_command("UPDATE")

_has_where(s) if s.has_where == true

denials contains {"rule": "unbounded_write", "priority": 40, "message": msg} if {
	not lib.is_break_glass
	some s in lib.judged
	_unbounded_write(s)
	msg := concat("", [_unbounded_what(s), lib.on_targets(s)])
}

alerts contains {"rule": "break_glass", "severity": "high", "message": msg} if {
	lib.is_break_glass
	some s in lib.judged
	_unbounded_write(s)
	msg := concat("", ["break-glass user ", lib.user, " ran ", _unbounded_what(s), lib.on_targets(s)])
}

# Actions reserved for admins. Denied for everybody else; an alert when an admin takes one.

denials contains {"rule": "admin_only", "priority": 50, "message": concat("", [action, " is reserved for admins"])} if {
	not lib.is_admin
	some action in _admin_only_actions
}

alerts contains {"rule": "admin_override", "severity": "medium", "message": msg} if {
	lib.is_admin
	some action in _admin_only_actions
	msg := concat("", ["admin ", lib.user, " ran ", action])
}

# DROP ..., ALTER ..., TRUNCATE
_admin_only_actions contains concat(" ", [lib.command(s), lib.targets(s)]) if {
	some s in lib.judged
	_destructive(s)
	lib.targets(s) != ""
}

_admin_only_actions contains lib.command(s) if {
	some s in lib.judged
	_destructive(s)
	lib.targets(s) == ""
}

_destructive(s) if startswith(upper(s.command), "DROP")

_destructive(s) if startswith(upper(s.command), "ALTER")

_destructive(s) if upper(s.command) == "TRUNCATE"

_destructive(s) if startswith(s.node, "Drop")

_destructive(s) if startswith(s.node, "Alter")

_destructive(s) if s.node == "TruncateStmt"

# DO, CREATE FUNCTION, ALTER SYSTEM, LOAD, CREATE EXTENSION, CREATE RULE, CREATE TRIGGER, GRANT, ...
_admin_only_actions contains upper(replace(s.utility, "_", " ")) if {
	some s in lib.judged
	_admin_only_utility(s)
}

_admin_only_utility(s) if admin_only_utility_name(s.utility)

# The same statements recognised by parse tree node, should a classifier miss the utility.
_admin_only_actions contains lib.command(s) if {
	some s in lib.judged
	admin_only_node(s.node)
	not _admin_only_utility(s)
}

admin_only_utility_name(u) if _builtin_admin_only_utility(u)

admin_only_utility_name(u) if u in data.pgward.admin_only_utilities

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

admin_only_node("DoStmt")

admin_only_node("CreateFunctionStmt")

admin_only_node("AlterSystemStmt")

admin_only_node("LoadStmt")

admin_only_node("CreateExtensionStmt")

admin_only_node("RuleStmt")

admin_only_node("CreateTrigStmt")

admin_only_node("CreateEventTrigStmt")

admin_only_node("GrantStmt")

admin_only_node("GrantRoleStmt")

# COPY ... PROGRAM and COPY with a file on the database server.
_admin_only_actions contains "COPY ... PROGRAM" if {
	some s in lib.judged
	s.copy.program == true
}

# The file name stays out of the message (a literal: messages are logged whatever audit.redact
# says of literals); input.statements[].copy.filename has it.
_admin_only_actions contains "COPY with a server-side file" if {
	some s in lib.judged
	is_string(s.copy.filename)
}

# Role changes: SET ROLE, SET SESSION AUTHORIZATION, RESET ROLE, set_config('role', ...).
_admin_only_actions contains concat("", ["role change (", lib.command(s), ")"]) if {
	some s in lib.judged
	s.role_change == true
}

_admin_only_actions contains concat("", ["role change (", _setting_label(x), ")"]) if {
	some s in lib.judged
	some x in s.settings
	lower(x.name) in lib.role_settings
}

_setting_label(x) := concat("", ["set_config('", lower(x.name), "')"]) if {
	x.via == "set_config"
} else := concat(" ", [upper(x.via), upper(replace(lower(x.name), "_", " "))])

# Functions with side effects outside the session: files, large objects, other backends,
# other servers, server configuration, SQL hidden in strings.
_admin_only_actions contains concat("", ["function ", f, "()"]) if {
	some s in lib.judged
	some f in s.functions
	is_dangerous_function(f)
}

# SQL run from a string argument (ts_stat, ts_rewrite, query_to_xml, ...) that the classifier
# could not read: a non-constant argument, or text that does not parse. A constant that parses is
# classified into the calling statement, and judged by every other rule.
_admin_only_actions contains concat("", ["SQL run from a non-constant string by ", c.function, "()"]) if {
	some s in lib.judged
	some c in s.sql_text_calls
	c.classified == false
	not is_dangerous_function(c.function) # query_to_xml*, dblink*: admin-only by name already
}

# FunctionCall (fastpath) names a function by OID: no SQL to analyse.
_admin_only_actions contains concat("", ["fastpath FunctionCall (function OID ", _function_oid, ")"]) if {
	input.message.type == "FunctionCall"
}

default _function_oid := "unknown"

_function_oid := lib.text(input.message.function_oid)

is_dangerous_function(f) if _dangerous_function_base(lib.function_base(f))

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

alerts contains {"rule": "sensitive_table", "severity": severity, "message": msg} if {
	some s in lib.judged
	some r in s.relations
	some table in _sensitive_matches(r)
	severity := _sensitive_severity(r.access)
	msg := concat("", [lib.command(s), " ", _access_verb(r.access), " sensitive table ", table])
}

_sensitive_matches(r) := {t | t := lower(concat(".", [r.schema, r.name])); t in _sensitive_tables} if {
	is_string(r.schema)
} else := {t | some t in _sensitive_tables; _table_part(t) == lower(r.name)}

_table_part(t) := parts[count(parts) - 1] if parts := split(t, ".")

# Whether _sensitive_matches(r) is not empty, by lookups.
sensitive_relation(r) if {
	is_string(r.schema)
	lower(concat(".", [r.schema, r.name])) in _sensitive_tables
}

# An unqualified name n matches t when _table_part(t) == n: n has no dot and t is n or ends in ".n".
sensitive_relation(r) if {
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

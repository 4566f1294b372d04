# METADATA
# title: input guard and facts shared by the rule packages
# description: |
#   The version and phase guard, the statements the SQL rules judge, principals and text helpers.
package pgward.lib

import data.pgward.read_only
import data.pgward.statements

# The input guard. The document's shape is the gateway's contract (docs/policy-input.schema.json):
# checked where the document is made (gateway/src/policy/input-schema.test.ts validates what the
# builders produce, and checks the TypeScript types against the schema) and where rules read it
# (make policy-test type-checks every rule against it: a rule that reads a field the contract
# does not define fails the build). At run time only what types cannot express is checked: the
# version, and that the message belongs to its phase. Rules read only the fields they need, so the
# gateway can leave the others out of the input.

valid_input if {
	valid_version
	valid_phase_message
}

valid_version if input.version == 1

# Membership tests below are functions with one body per constant rather than `x in {...}`:
# in the wasm target a set literal is built (allocated and hashed) on every evaluation.

# A startup document carries connection information only.
valid_phase_message if {
	input.phase == "startup"
	input.message.type == "StartupMessage"
	count(input.statements) == 0
	is_null(input.parse_error)
}

valid_phase_message if {
	input.phase == "message"
	_message_phase_type(input.message.type)
}

_message_phase_type("Query")

_message_phase_type("Parse")

_message_phase_type("Bind")

_message_phase_type("FunctionCall")

_message_phase_type("CopyData")

string_or_null(x) if is_string(x)

string_or_null(x) if is_null(x)

# The statements judged for this message: the message's own statements, the statement a Bind
# binds, and what PREPARE / EXECUTE stand for (two levels: PREPARE cannot nest another PREPARE).
#
# For speed, `judged` holds only the statements that some SQL rule could concern: a
# statement that is `plain` (nothing in it that any rule below denies or alerts
# on) is left out, so the rules, which all iterate `judged`, have nothing to do for it. A
# plain statement has `prepared: null`, so it stands for no inner statement either.
_top_statements contains s if {
	some s in input.statements
	not plain(s)
}

_top_statements contains s if {
	input.message.type == "Bind"
	some s in input.message.statement.statements
	not plain(s)
}

judged contains s if some s in _top_statements

judged contains inner if {
	some s in _top_statements
	inner := s.prepared.inner
	not is_null(inner)
	not plain(inner)
}

judged contains inner if {
	some s in _top_statements
	inner := s.prepared.inner.prepared.inner
	not is_null(inner)
	not plain(inner)
}

# A statement no rule can deny or alert on. Every condition negates the trigger of a rule
# (statements.rego): keep the two in step when a rule changes. Any doubt: not plain, and the
# statement goes through every rule.
plain(s) if {
	is_null(s.prepared) # no PREPARE/EXECUTE (rule 21), nothing inner to judge
	is_null(s.copy) # no COPY FROM (31), PROGRAM or server file (50)
	s.role_change == false # 31, 50
	count(s.settings) == 0 # 30, 50
	_plain_command(upper(s.command), s.has_where) # DROP/ALTER/TRUNCATE (50), unbounded writes (40)
	_plain_node(s.node) # Drop*/Alter*/TruncateStmt and the admin-only nodes (50)
	_plain_utility(s.utility) # admin-only utilities (50)
	every f in s.functions {
		not statements.is_dangerous_function(f) # 31, 50
	}
	every r in s.relations {
		not statements.sensitive_relation(r) # sensitive_table alert
	}
	_plain_for_principal(s) # 31, 32
	not _unclassified_sql_text(s) # 50
}

_unclassified_sql_text(s) if {
	some c in s.sql_text_calls
	c.classified == false
}

_plain_command(c, has_where) if {
	not startswith(c, "DROP")
	not startswith(c, "ALTER")
	c != "TRUNCATE"
	_bounded(c, has_where)
}

# has_where is false whenever the statement runs a DELETE or UPDATE without WHERE anywhere
# (a data-modifying CTE, EXPLAIN ANALYZE, COPY (DELETE …)), whatever its own command.
_bounded(c, has_where) if {
	not statements.unbounded_command(c)
	has_where != false
}

_bounded(_, true)

_plain_node(n) if {
	not startswith(n, "Drop")
	not startswith(n, "Alter")
	n != "TruncateStmt"
	not statements.admin_only_node(n)
}

_plain_utility(u) if is_null(u)

_plain_utility(u) if {
	is_string(u)
	not statements.admin_only_utility_name(u)
}

# Read-only principals: a statement that the classifier calls read-only, that is not DDL, reads
# only, and does not start a READ WRITE transaction (copy, role change, settings and dangerous
# functions are excluded above for everybody).
_plain_for_principal(_) if not is_read_only_user

_plain_for_principal(s) if {
	is_read_only_user
	not read_only.has_user_function(s)
	s.read_only == true
	s.ddl == false
	not s.transaction.mode == "read_write"
	every r in s.relations {
		r.access == "read"
	}
}

has_parse_error if is_string(input.parse_error)

has_parse_error if {
	input.message.type == "Bind"
	is_string(input.message.statement.parse_error)
}

# Text helpers. Each is total for the values it is given so that a reason is never undefined.
text(x) := x if is_string(x)

else := "(none)" if is_null(x)

else := json.marshal(x)

relation_name(r) := concat(".", [r.schema, r.name]) if is_string(r.schema)

else := r.name if is_string(r.name)

else := "(unnamed relation)"

command(s) := upper(s.command) if is_string(s.command)

else := "(unknown statement)"

# Relations a statement changes, or every relation it names when it changes none.
targets(s) := names if {
	names := concat(", ", sort({relation_name(r) | some r in s.relations; r.access != "read"}))
	names != ""
} else := concat(", ", sort({relation_name(r) | some r in s.relations}))

on_targets(s) := concat("", [" on ", targets(s)]) if targets(s) != ""

else := ""

# Function names are matched lower-cased and without schema: pg_catalog.pg_read_file,
# "PG_CATALOG"."PG_READ_FILE" and evil.pg_read_file all match pg_read_file.
function_base(f) := base if {
	parts := split(lower(f), ".")
	base := trim(parts[count(parts) - 1], "\"")
}

user := input.connection.user

is_admin if input.connection.user in data.pgward.admins

is_break_glass if input.connection.user in data.pgward.break_glass

is_read_only_user if input.connection.user in data.pgward.read_only_users

is_blocked_user if input.connection.user in data.pgward.blocked_users

is_tls_required_user if input.connection.user in data.pgward.tls_required_users

# Startup settings and set_config names that change the role.
role_settings := {"role", "session_authorization"}

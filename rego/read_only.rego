# METADATA
# title: read-only principals
# description: |
#   Denials for the users in data.pgward.read_only_users: nothing that writes, changes schema or
#   roles, or turns read-only mode off.
package pgward.read_only

import data.pgward.connection
import data.pgward.lib
import data.pgward.statements

denials contains {"rule": "read_only_startup_setting", "priority": 15, "message": msg} if {
	lib.is_read_only_user
	some [name, value] in connection.startup_settings
	name in _read_only_settings
	not _turns_read_only_on(value)
	msg := concat("", ["read-only user ", lib.user, " cannot set ", name, " at startup"])
}

# Read-only principals: nothing that writes, changes schema or roles, or has side effects.

# Optional (data.pgward.read_only_deny_user_functions, off by default): read-only principals may
# call only built-in functions (pg_catalog names, data.pgward_builtins generated from pg_proc).
# A user-defined function can write whatever its owner may write (SECURITY DEFINER), or change
# settings from inside, where no classifier sees it.
denials contains {"rule": "read_only_user_function", "priority": 32, "message": msg} if {
	some s in lib.judged
	some f in _user_functions(s)
	msg := _read_only_reason(concat("", ["cannot call user-defined function ", f, "()"]))
}

_user_functions(s) := {f | some f in s.functions; not _builtin_function(f)} if {
	data.pgward.read_only_deny_user_functions == true
	lib.is_read_only_user
}

has_user_function(s) if {
	data.pgward.read_only_deny_user_functions == true
	lib.is_read_only_user
	some f in s.functions
	not _builtin_function(f)
}

_builtin_function(f) if data.pgward_builtins.functions[f] == true

_builtin_function(f) if {
	startswith(f, "pg_catalog.")
	data.pgward_builtins.functions[substring(f, 11, -1)] == true
}

denials contains {"rule": "read_only", "priority": 31, "message": msg} if {
	lib.is_read_only_user
	some s in lib.judged
	msg := _read_only_violation(s)
}

_read_only_violation(s) := _read_only_reason("cannot start a READ WRITE transaction") if {
	s.transaction.mode == "read_write"
} else := _read_only_reason(concat("", ["cannot run COPY FROM", lib.on_targets(s)])) if {
	s.copy.direction == "from"
} else := _read_only_reason("cannot change role") if {
	s.role_change == true
} else := _read_only_reason(concat("", ["cannot run ", lib.command(s), lib.on_targets(s)])) if {
	s.ddl == true
} else := _read_only_reason(concat("", ["cannot write to ", lib.targets(s)])) if {
	some r in s.relations
	r.access != "read"
} else := _read_only_reason(concat("", ["cannot call ", concat(", ", sort(names))])) if {
	names := {concat("", [f, "()"]) | some f in s.functions; statements.is_dangerous_function(f)}
	count(names) > 0
} else := _read_only_reason(concat("", ["cannot run ", lib.command(s), ": it is not read-only"])) if {
	s.read_only == false
	not _read_only_exempt(s)
}

_read_only_reason(what) := concat("", ["read-only user ", lib.user, " ", what])

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

denials contains {"rule": "read_only_setting", "priority": 30, "message": msg} if {
	lib.is_read_only_user
	some s in lib.judged
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
	lower(trim_space(x.value)) in _boolean_words
} else := concat("", ["set ", lower(x.name), " to a value other than on"]) if {
	is_string(x.value)
} else := concat("", ["set ", lower(x.name), " to a non-constant value"])

# Values PostgreSQL reads as booleans (parse_bool), shown as written; any other literal stays out
# of the message (messages are logged whatever audit.redact says of literals).
_boolean_words := {
	"on", "of", "off", "1", "0",
	"t", "tr", "tru", "true", "f", "fa", "fal", "fals", "false",
	"y", "ye", "yes", "n", "no",
}

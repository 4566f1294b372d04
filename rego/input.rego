package pgward

# Structural checks on the input document. A rule whose condition reads a missing field is
# undefined, so an incomplete document could otherwise slip past a deny rule: allow requires the
# whole document (and every statement in it) to have the version 1 shape.

_valid_input if {
	_valid_version
	_valid_shape
	_valid_phase_message
	every s in _statements {
		_valid_statement(s)
	}
}

_valid_version if input.version == 1

_valid_shape if {
	is_object(input.connection)
	is_string(input.connection.user)
	is_object(input.connection.tls)
	is_boolean(input.connection.tls.enabled)
	is_string(input.connection.client_addr)
	is_object(input.connection.parameters)
	is_object(input.connection.options)
	is_object(input.message)
	is_string(input.message.type)
	is_array(input.statements)
	_string_or_null(input.parse_error)
}

_message_types := {
	"startup": {"StartupMessage"},
	"message": {"Query", "Parse", "Bind", "FunctionCall", "CopyData"},
}

_valid_phase_message if {
	input.message.type in _message_types[input.phase]
	_valid_phase_statements
}

# A startup document carries connection information only.
_valid_phase_statements if {
	input.phase == "startup"
	count(input.statements) == 0
	is_null(input.parse_error)
}

_valid_phase_statements if input.phase == "message"

_valid_statement(s) if {
	is_object(s)
	is_string(s.command)
	is_string(s.node)
	is_array(s.relations)
	every r in s.relations {
		_valid_relation(r)
	}
	is_array(s.functions)
	every f in s.functions {
		is_string(f)
	}
	_boolean_or_null(s.has_where)
	is_boolean(s.read_only)
	is_boolean(s.ddl)
	is_boolean(s.role_change)
	_string_or_null(s.utility)
	_valid_copy(s.copy)
	_valid_transaction(s.transaction)
	_valid_prepared(s.prepared)
	is_array(s.settings)
	every setting in s.settings {
		_valid_setting(setting)
	}
}

_valid_relation(r) if {
	is_object(r)
	_string_or_null(r.schema)
	is_string(r.name)
	r.access in {"read", "write", "ddl"}
}

_valid_copy(c) if is_null(c)

_valid_copy(c) if {
	c.direction in {"from", "to"}
	is_boolean(c.stdio)
	is_boolean(c.program)
	_string_or_null(c.filename)
}

_valid_transaction(t) if is_null(t)

_valid_transaction(t) if {
	is_string(t.kind)
	t.mode in {"read_write", "read_only", null}
}

_valid_prepared(p) if is_null(p)

_valid_prepared(p) if {
	p.kind in {"prepare", "execute", "deallocate", "discard"}
	_string_or_null(p.name)
}

_valid_setting(x) if {
	is_string(x.name)
	_string_or_null(x.value)
	x.via in {"set", "reset", "set_config"}
}

_string_or_null(x) if is_string(x)

_string_or_null(x) if is_null(x)

_boolean_or_null(x) if is_boolean(x)

_boolean_or_null(x) if is_null(x)

# The statements judged for this message: the message's own statements, the statement a Bind
# binds, and what PREPARE / EXECUTE stand for (two levels: PREPARE cannot nest another PREPARE).
_top_statements contains s if some s in input.statements

_top_statements contains s if {
	input.message.type == "Bind"
	some s in input.message.statement.statements
}

_statements contains s if some s in _top_statements

_statements contains inner if {
	some s in _top_statements
	inner := s.prepared.inner
	not is_null(inner)
}

_statements contains inner if {
	some s in _top_statements
	inner := s.prepared.inner.prepared.inner
	not is_null(inner)
}

_has_parse_error if is_string(input.parse_error)

_has_parse_error if {
	input.message.type == "Bind"
	is_string(input.message.statement.parse_error)
}

# Text helpers. Each is total for the values it is given so that a reason is never undefined.
_text(x) := x if is_string(x)

else := "(none)" if is_null(x)

else := json.marshal(x)

_relation_name(r) := concat(".", [r.schema, r.name]) if is_string(r.schema)

else := r.name if is_string(r.name)

else := "(unnamed relation)"

_command(s) := upper(s.command) if is_string(s.command)

else := "(unknown statement)"

# Relations a statement changes, or every relation it names when it changes none.
_targets(s) := names if {
	names := concat(", ", sort({_relation_name(r) | some r in s.relations; r.access != "read"}))
	names != ""
} else := concat(", ", sort({_relation_name(r) | some r in s.relations}))

_on_targets(s) := concat("", [" on ", _targets(s)]) if _targets(s) != ""

else := ""

# Function names are matched lower-cased and without schema: pg_catalog.pg_read_file,
# "PG_CATALOG"."PG_READ_FILE" and evil.pg_read_file all match pg_read_file.
_function_base(f) := base if {
	parts := split(lower(f), ".")
	base := trim(parts[count(parts) - 1], "\"")
}

_user := input.connection.user

_is_admin if _user in data.pgward.admins

_is_break_glass if _user in data.pgward.break_glass

_is_read_only_user if _user in data.pgward.read_only_users

_is_blocked_user if _user in data.pgward.blocked_users

_is_tls_required_user if _user in data.pgward.tls_required_users

# METADATA
# title: pgward shipped policy
# description: |
#   Guard rails for the PostgreSQL wire protocol. The only public rule is `decision`;
#   everything else is a `_private` helper. Input: docs/policy-input.md (version 1).
#   Configuration: data.pgward.* (rego/data.json, documented in rego/README.md).
package pgward

# METADATA
# title: decision
# description: |
#   The gateway's verdict for one input document. Always defined (deny by default):
#   {"allow": bool, "reasons": [string], "alerts": [{"rule", "severity", "message"}],
#    "sqlstate"?: string, "session_parameters"?: {string: string}}.
#   The first reason becomes the client's error message.
# entrypoint: true
decision := _allowed_decision([]) if {
	_fast
} else := _allowed_decision(_alerts) if {
	_allow
} else := object.union(object.union(_denied_base, _sqlstate_field), _session_parameters_field)

# Built directly rather than by object.union: allowing is the common case.
_allowed_decision(alerts) := {
	"allow": true,
	"reasons": [],
	"alerts": alerts,
	"session_parameters": _read_only_session_parameters,
} if {
	input.phase == "startup"
	_is_read_only_user
} else := {"allow": true, "reasons": [], "alerts": alerts}

# Fast path. The common document (valid, nothing denied, nothing to alert on) is recognised here
# in one rule, without building the sets of denials and alerts; anything else is judged by the
# rules below. Each condition is the negation of the trigger of the rules that could otherwise
# fire, through the same helpers, so that when _fast holds those rules give allow with no
# reasons and no alerts:
#   version, shape, phase (0), every statement `_plain`, so that `_statements` is empty (1, 21,
#   30, 31, 40, 50 and every statement alert), no parse error (20), a Bind with a known statement
#   (20, 21), no FunctionCall (50), connection rules (10, 11, 12), and none of the startup
#   settings that rules 13 to 15 look at (`_startup_settings` is empty).
# fast_path_test.rego checks that every test document gets the same decision without it.
_fast if {
	input.version == 1
	_valid_shape
	_valid_phase_message
	is_null(input.parse_error)
	_fast_message_type(input.message.type)
	every s in input.statements {
		_plain(s)
	}
	not _is_blocked_user
	not _tls_missing
	not _network_denied
	_no_watched_settings(input.connection.parameters)
	_no_watched_settings(input.connection.options)
	count(_custom_deny) == 0
	count(_custom_alert) == 0
}

_no_watched_settings(settings) if {
	every name, _ in settings {
		not _watched_startup_setting(_setting_key(name))
	}
}

_fast_message_type("StartupMessage")

_fast_message_type("Query")

_fast_message_type("Parse")

_fast_message_type("CopyData")

_fast_message_type("Bind") if {
	is_array(input.message.statement.statements)
	is_null(input.message.statement.parse_error)
	every s in input.message.statement.statements {
		_plain(s)
	}
}

_denied_base := {
	"allow": false,
	"reasons": _reasons,
	"alerts": _alerts,
}

default _allow := false

_allow if {
	_valid_input
	count(_denials) == 0
}

# Every denial is a [priority, reason] pair; lower priorities come first in `reasons`.
_reasons := [reason | some [_, reason] in sort(_denials)] if {
	not _allow
	count(_denials) > 0
} else := ["denied by default: the input document is not a valid version 1 document"] if {
	not _allow
} else := []

_alerts := sort(_alert_set)

default _sqlstate_field := {}

# Startup denials are authentication failures (invalid_authorization_specification).
_sqlstate_field := {"sqlstate": "28000"} if {
	not _allow
	input.phase == "startup"
} else := {"sqlstate": "42601"} if {
	not _allow
	_has_parse_error
}

default _session_parameters_field := {}

# Second wall for read-only principals: the upstream session starts read-only whatever the client asks.
_session_parameters_field := {"session_parameters": _read_only_session_parameters} if {
	input.phase == "startup"
	_is_read_only_user
}

_read_only_session_parameters := {"default_transaction_read_only": "on"}

# Denials that apply to every phase: a document that is not version 1 input, or a message
# whose type does not belong to its phase.
_denials contains [0, "input document is not version 1"] if not _valid_version

_denials contains [0, "input document is malformed"] if {
	_valid_version
	not _valid_shape
}

_denials contains [0, msg] if {
	_valid_shape
	not _valid_phase_message
	msg := concat("", ["message type ", _text(input.message.type), " is not expected in phase ", _text(input.phase)])
}

# Site rules from package pgward.custom (rego/custom.rego): reasons and alerts of their own,
# never skipped by the fast path.
default _custom_deny := set()

_custom_deny := data.pgward.custom.deny

default _custom_alert := set()

_custom_alert := data.pgward.custom.alert

_denials contains [60, reason] if {
	some reason in _custom_deny
}

_alert_set contains alert if {
	some alert in _custom_alert
}

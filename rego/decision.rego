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
decision := object.union(object.union(_base, _sqlstate_field), _session_parameters_field)

_base := {
	"allow": _allow,
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
_session_parameters_field := {"session_parameters": {"default_transaction_read_only": "on"}} if {
	input.phase == "startup"
	_is_read_only_user
}

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

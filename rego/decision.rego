# METADATA
# title: pgward shipped policy
# description: |
#   Guard rails for the PostgreSQL wire protocol. The only public rule is `decision`; the rules
#   live in one package per concern (pgward.connection, pgward.statements, pgward.read_only, and
#   the site rules of pgward.custom), each contributing `denials` and `alerts`.
#   Input: docs/policy-input.md (version 1). Configuration: data.pgward.* (rego/README.md).
#   Type-checked against the input contract: `opa check --schema docs/opa-schemas` (make policy-test).
# scope: subpackages
# schemas:
#   - input: schema.input
package pgward

import data.pgward.connection
import data.pgward.lib
import data.pgward.read_only
import data.pgward.statements

# METADATA
# title: decision
# description: |
#   The gateway's verdict for one input document. Always defined (deny by default):
#   {"allow": bool, "denials": [{"rule", "message", "priority"}],
#    "alerts": [{"rule", "severity", "message"}], "sqlstate"?: string,
#    "session_parameters"?: {string: string}}.
#   Denials are ordered by priority, then rule id; the first one's message reaches the client.
# entrypoint: true
decision := _allowed_decision if {
	_allow
} else := object.union(object.union(_denied_base, _sqlstate_field), _session_parameters_field)

# Built directly rather than by object.union: allowing is the common case.
_allowed_decision := {
	"allow": true,
	"denials": [],
	"alerts": _alerts,
	"session_parameters": _read_only_session_parameters,
} if {
	input.phase == "startup"
	lib.is_read_only_user
} else := {"allow": true, "denials": [], "alerts": _alerts}

_denied_base := {
	"allow": false,
	"denials": _ordered_denials,
	"alerts": _alerts,
}

default _allow := false

_allow if {
	lib.valid_input
	count(_denials) == 0
}

# Every denial is {"rule", "priority", "message"}; lower priorities come first.
_ordered_denials := [{"rule": rule, "message": message, "priority": priority} |
	some [priority, rule, message] in sort([[d.priority, d.rule, d.message] | some d in _denials])
] if {
	count(_denials) > 0
} else := [{
	"rule": "default_deny",
	"message": "denied by default: the input document is not a valid version 1 document",
	"priority": 0,
}]

_alerts := sort(_alert_set)

default _sqlstate_field := {}

# Startup denials are authentication failures (invalid_authorization_specification).
_sqlstate_field := {"sqlstate": "28000"} if {
	input.phase == "startup"
} else := {"sqlstate": "42601"} if {
	lib.has_parse_error
}

default _session_parameters_field := {}

# Second wall for read-only principals: the upstream session starts read-only whatever the client asks.
_session_parameters_field := {"session_parameters": _read_only_session_parameters} if {
	input.phase == "startup"
	lib.is_read_only_user
}

_read_only_session_parameters := {"default_transaction_read_only": "on"}

# The denials and alerts of every rule package.
_denials contains d if some d in connection.denials

_denials contains d if some d in statements.denials

_denials contains d if some d in read_only.denials

_alert_set contains a if some a in statements.alerts

# Denials that apply to every phase: a document that is not version 1 input, or a message
# whose type does not belong to its phase.
_denials contains {"rule": "input_version", "priority": 0, "message": "input document is not version 1"} if {
	not lib.valid_version
}

_denials contains {"rule": "message_phase", "priority": 0, "message": msg} if {
	lib.valid_version
	not lib.valid_phase_message
	msg := concat("", ["message type ", lib.text(input.message.type), " is not expected in phase ", lib.text(input.phase)])
}

# Site rules from package pgward.custom (rego/custom.rego). A `deny` entry is a string (rule id
# "custom") or an object {"rule", "message"} with a rule id of its own; they come after the
# shipped denials (priority 60). `alert` entries are {"rule", "severity", "message"} objects.
default _custom_deny := set()

_custom_deny := data.pgward.custom.deny

default _custom_alert := set()

_custom_alert := data.pgward.custom.alert

_denials contains {"rule": _custom_rule(d), "priority": 60, "message": _custom_message(d)} if {
	some d in _custom_deny
}

# Total, so that a malformed entry still denies: an object without a string rule is "custom", an
# entry that is neither a string nor an object with a string message is denied with its JSON.
_custom_rule(d) := d.rule if {
	is_object(d)
	is_string(d.rule)
} else := "custom"

_custom_message(d) := d if {
	is_string(d)
} else := d.message if {
	is_object(d)
	is_string(d.message)
} else := json.marshal(d)

_alert_set contains alert if {
	some alert in _custom_alert
}

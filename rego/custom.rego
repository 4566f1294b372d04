# METADATA
# title: site rules (extension point)
# description: |
#   Put your own rules here (or in more files of `package pgward.custom`): every entry of `deny`
#   denies the message, either an object {"rule", "message"} (the rule id labels metrics, logs
#   and replay reports: lower-case, [a-z0-9_] words joined by dots) or a plain string (rule id
#   "custom"); every object in `alert` ({"rule", "severity", "message"}) is raised as an alert.
#   They are judged on every message and at startup, after the shipped rules (priority 60).
#   See docs/policy-cookbook.md.
package pgward.custom

# Example (kept disabled): refuse the payroll table outside the payroll service.
#
# deny contains {"rule": "payroll_service_only", "message": msg} if {
# 	some s in input.statements
# 	some r in s.relations
# 	r.name == "payroll"
# 	input.connection.application_name != "payroll-svc"
# 	msg := sprintf("%s is reserved for the payroll service", [r.name])
# }

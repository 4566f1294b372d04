# METADATA
# title: site rules (extension point)
# description: |
#   Put your own rules here (or in more files of `package pgward.custom`): every string in
#   `deny` denies the message with that reason, every object in `alert` ({"rule", "severity",
#   "message"}) is raised as an alert. They are judged on every message and at startup, after
#   the shipped rules, and the shipped fast path never skips them. See docs/policy-cookbook.md.
package pgward.custom

# Example (kept disabled): refuse the payroll table outside the payroll service.
#
# deny contains sprintf("%s is reserved for the payroll service", [r.name]) if {
# 	some s in input.statements
# 	some r in s.relations
# 	r.name == "payroll"
# 	input.connection.application_name != "payroll-svc"
# }

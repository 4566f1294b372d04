package pgward_test

# Builders for version 1 input documents (gateway/src/policy/types.ts, gateway/src/sql/types.ts).

connection(user) := {
	"id": "c-1",
	"client_addr": "127.0.0.1",
	"client_port": 51514,
	"tls": {"enabled": false, "version": null, "cipher": null, "client_cert_subject": null},
	"user": user,
	"database": "app",
	"application_name": "psql",
	"parameters": {"user": user, "database": "app"},
	"options": {},
	"protocol_version": "3.0",
	"authenticated": true,
	"transaction_status": "I",
}

stmt(fields) := object.union(
	{
		"command": "SELECT",
		"node": "SelectStmt",
		"sql": "SELECT 1",
		"fingerprint": "00",
		"relations": [],
		"functions": [],
		"has_where": null,
		"read_only": true,
		"ddl": false,
		"role_change": false,
		"utility": null,
		"copy": null,
		"transaction": null,
		"prepared": null,
		"settings": [],
	},
	fields,
)

query(user, statements) := {
	"version": 1,
	"phase": "message",
	"connection": connection(user),
	"message": {"type": "Query", "sql": "(see statements)", "truncated": false},
	"statements": statements,
	"parse_error": null,
}

query_as(conn, statements) := object.union(query(conn.user, statements), {"connection": conn})

bind(user, prepared) := {
	"version": 1,
	"phase": "message",
	"connection": connection(user),
	"message": {"type": "Bind", "portal_name": "", "statement": prepared, "parameters": []},
	"statements": [],
	"parse_error": null,
}

startup(conn) := {
	"version": 1,
	"phase": "startup",
	"connection": conn,
	"message": {"type": "StartupMessage"},
	"statements": [],
	"parse_error": null,
}

startup_of(user) := startup(connection(user))

rel(schema, name, access) := {"schema": schema, "name": name, "access": access}

setting(name, value, via) := {"name": name, "value": value, "local": false, "via": via}

copy_info(direction, fields) := object.union(
	{"direction": direction, "stdio": true, "program": false, "filename": null, "query": false},
	fields,
)

select_from(schema, name) := stmt({"relations": [rel(schema, name, "read")]})

delete_from(schema, name, has_where) := stmt({
	"command": "DELETE",
	"node": "DeleteStmt",
	"relations": [rel(schema, name, "write")],
	"has_where": has_where,
	"read_only": false,
})

update_of(schema, name, has_where) := stmt({
	"command": "UPDATE",
	"node": "UpdateStmt",
	"relations": [rel(schema, name, "write")],
	"has_where": has_where,
	"read_only": false,
})

# The decision as the tests read it: `reasons` lists the denials' messages, in order (the rule ids
# and priorities are checked by decision_test.rego on the decision itself, decide_raw).
decide(doc) := object.union(object.remove(d, {"denials"}), {"reasons": [x.message | some x in d.denials]}) if {
	d := decide_raw(doc)
}

decide_raw(doc) := d if {
	d := data.pgward.decision with input as doc
}

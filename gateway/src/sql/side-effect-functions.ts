/**
 * Functions that do more than compute a value: they write data or files, read server files,
 * signal backends, change settings, open connections elsewhere, take locks or run SQL given as
 * text. A statement that calls one is never `read_only`. Matched on the unqualified, lower-cased
 * name, so `pg_catalog.nextval` and `"nextval"` match too (a same-named user function in another
 * schema is treated the same way: a false positive only makes the classification stricter).
 *
 * This list is deliberately small and conservative; policies receive every called function in
 * `functions[]` and can deny more.
 */

const EXACT: ReadonlySet<string> = new Set([
  // sequences
  'nextval',
  'setval',
  // settings (see also role_change / settings for set_config)
  'set_config',
  // backends and server control
  'pg_terminate_backend',
  'pg_cancel_backend',
  'pg_reload_conf',
  'pg_rotate_logfile',
  'pg_promote',
  'pg_switch_wal',
  'pg_create_restore_point',
  'pg_log_backend_memory_contexts',
  'pg_import_system_collations',
  'pg_log_standby_snapshot', // 16: writes WAL
  'pg_sync_replication_slots', // 17
  // 18: planner statistics of a table, written even in a read-only transaction
  'pg_restore_relation_stats',
  'pg_restore_attribute_stats',
  'pg_clear_relation_stats',
  'pg_clear_attribute_stats',
  'pg_notify',
  'pg_current_xact_id',
  'txid_current',
  // server files
  'pg_stat_file',
  'pg_file_write',
  'pg_file_rename',
  'pg_file_unlink',
  'pg_file_sync',
  'pg_logdir_ls',
  // SQL text executed by the server on the caller's behalf
  'query_to_xml',
  'query_to_xmlschema',
  'query_to_xml_and_xmlschema',
  'cursor_to_xml',
  'cursor_to_xmlschema',
  'table_to_xml',
  'table_to_xmlschema',
  'table_to_xml_and_xmlschema',
  'schema_to_xml',
  'database_to_xml',
  // large objects (server-side lo_import/lo_export touch server files)
  'loread',
  'lowrite',
]);

const PREFIXES: readonly string[] = [
  'lo_', // lo_import, lo_export, lo_create, lo_unlink, lo_put, lo_from_bytea, ...
  'pg_read_', // pg_read_file, pg_read_binary_file
  'pg_ls_', // pg_ls_dir, pg_ls_logdir, pg_ls_waldir, ...
  'dblink', // dblink, dblink_exec, dblink_connect, dblink_send_query, ...
  'pg_advisory_',
  'pg_try_advisory_',
  'pg_stat_reset',
  'pg_backup_',
  'pg_start_backup',
  'pg_stop_backup',
  'pg_create_', // replication slots
  'pg_drop_replication_slot',
  'pg_copy_', // pg_copy_logical_replication_slot, ...
  'pg_replication_',
  'pg_logical_', // pg_logical_slot_get_changes consumes changes, pg_logical_emit_message writes WAL
  'pg_wal_replay_',
  'binary_upgrade_',
];

/** `name` is the unqualified, lower-cased function name. */
export function hasSideEffects(name: string): boolean {
  if (EXACT.has(name)) return true;
  for (const p of PREFIXES) if (name.startsWith(p)) return true;
  return false;
}

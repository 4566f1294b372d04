/**
 * Per parse-tree node: its command tag, utility class and whether it is DDL.
 *
 * Command tags follow PostgreSQL's command tags (src/include/tcop/cmdtaglist.h), e.g. `SELECT`,
 * `CREATE TABLE AS`, `DROP FUNCTION`, `START TRANSACTION`, except `TRUNCATE` (PostgreSQL says
 * `TRUNCATE TABLE`). `ddl` follows PostgreSQL's own `log_statement = 'ddl'` classification
 * (GetCommandLogLevel in src/backend/tcop/utility.c): CREATE/ALTER/DROP of anything, GRANT/REVOKE,
 * COMMENT, SECURITY LABEL, ALTER SYSTEM, REFRESH MATERIALIZED VIEW, CREATE TABLE AS, SELECT INTO.
 *
 * Utility classes (`StatementInfo.utility`), null for SELECT/VALUES, INSERT, UPDATE, DELETE, MERGE
 * and for plain DDL that has no class of its own (CREATE TABLE, ALTER TABLE, DROP ..., which
 * `ddl` already flags):
 *   do, create_function (functions and procedures), alter_function, call, alter_system, load,
 *   create_extension, alter_extension, create_language, grant, revoke (privileges and role
 *   membership), alter_default_privileges, create_rule, create_trigger, create_event_trigger,
 *   alter_event_trigger, create_role, alter_role, drop_role, alter_owner, reassign_owned,
 *   drop_owned, policy (row-level security policies), create_database, alter_database,
 *   drop_database, tablespace, subscription, publication, foreign_data (servers, FDWs, user
 *   mappings, foreign tables, IMPORT FOREIGN SCHEMA), security_label, vacuum, analyze, cluster,
 *   reindex, checkpoint, lock, listen, unlisten, notify, discard, prepare, execute, deallocate,
 *   cursor (DECLARE, FETCH, MOVE, CLOSE), copy, truncate, explain, transaction, set, reset, show,
 *   set_constraints.
 * A node type missing from the table (a future PostgreSQL statement) gets its snake_cased node
 * name as utility class and is never read-only.
 */

export const UTILITY_CLASSES = [
  'do',
  'create_function',
  'alter_function',
  'call',
  'alter_system',
  'load',
  'create_extension',
  'alter_extension',
  'create_language',
  'grant',
  'revoke',
  'alter_default_privileges',
  'create_rule',
  'create_trigger',
  'create_event_trigger',
  'alter_event_trigger',
  'create_role',
  'alter_role',
  'drop_role',
  'alter_owner',
  'reassign_owned',
  'drop_owned',
  'policy',
  'create_database',
  'alter_database',
  'drop_database',
  'tablespace',
  'subscription',
  'publication',
  'foreign_data',
  'security_label',
  'vacuum',
  'analyze',
  'cluster',
  'reindex',
  'checkpoint',
  'lock',
  'listen',
  'unlisten',
  'notify',
  'discard',
  'prepare',
  'execute',
  'deallocate',
  'cursor',
  'copy',
  'truncate',
  'explain',
  'transaction',
  'set',
  'reset',
  'show',
  'set_constraints',
] as const;

export type UtilityClass = (typeof UTILITY_CLASSES)[number];

type Body = Record<string, unknown>;

export interface StatementKind {
  command: string;
  utility: string | null;
  ddl: boolean;
}

interface KindRule {
  command: string | ((b: Body) => string);
  utility?: UtilityClass | ((b: Body) => UtilityClass);
  ddl?: true;
}

const OBJECT_WORDS: Readonly<Record<string, string>> = {
  MATVIEW: 'MATERIALIZED VIEW',
  FDW: 'FOREIGN DATA WRAPPER',
  FOREIGN_SERVER: 'SERVER',
  TSCONFIGURATION: 'TEXT SEARCH CONFIGURATION',
  TSDICTIONARY: 'TEXT SEARCH DICTIONARY',
  TSPARSER: 'TEXT SEARCH PARSER',
  TSTEMPLATE: 'TEXT SEARCH TEMPLATE',
  OPCLASS: 'OPERATOR CLASS',
  OPFAMILY: 'OPERATOR FAMILY',
  STATISTIC_EXT: 'STATISTICS',
  LARGEOBJECT: 'LARGE OBJECT',
  TABCONSTRAINT: 'TABLE',
  DOMCONSTRAINT: 'DOMAIN',
  AMOP: 'OPERATOR FAMILY',
  AMPROC: 'OPERATOR FAMILY',
  ATTRIBUTE: 'TYPE',
  DEFACL: 'DEFAULT PRIVILEGES',
  PUBLICATION_NAMESPACE: 'PUBLICATION',
  PUBLICATION_REL: 'PUBLICATION',
};

/** `OBJECT_FOREIGN_TABLE` → `FOREIGN TABLE`. */
export function objectWords(objectType: unknown): string {
  if (typeof objectType !== 'string') return 'OBJECT';
  const bare = objectType.startsWith('OBJECT_') ? objectType.slice(7) : objectType;
  return OBJECT_WORDS[bare] ?? bare.replace(/_/g, ' ');
}

const str = (b: Body, k: string): string => (typeof b[k] === 'string' ? (b[k] as string) : '');

const TRANSACTION_COMMANDS: Readonly<Record<string, string>> = {
  TRANS_STMT_BEGIN: 'BEGIN',
  TRANS_STMT_START: 'START TRANSACTION',
  TRANS_STMT_COMMIT: 'COMMIT',
  TRANS_STMT_ROLLBACK: 'ROLLBACK',
  TRANS_STMT_SAVEPOINT: 'SAVEPOINT',
  TRANS_STMT_RELEASE: 'RELEASE',
  TRANS_STMT_ROLLBACK_TO: 'ROLLBACK',
  TRANS_STMT_PREPARE: 'PREPARE TRANSACTION',
  TRANS_STMT_COMMIT_PREPARED: 'COMMIT PREPARED',
  TRANS_STMT_ROLLBACK_PREPARED: 'ROLLBACK PREPARED',
};

const RULES: Readonly<Record<string, KindRule>> = {
  SelectStmt: { command: (b) => (b['intoClause'] !== undefined ? 'SELECT INTO' : 'SELECT') },
  InsertStmt: { command: 'INSERT' },
  UpdateStmt: { command: 'UPDATE' },
  DeleteStmt: { command: 'DELETE' },
  MergeStmt: { command: 'MERGE' },

  AlterCollationStmt: { command: 'ALTER COLLATION', ddl: true },
  AlterDatabaseRefreshCollStmt: { command: 'ALTER DATABASE', utility: 'alter_database', ddl: true },
  AlterDatabaseSetStmt: { command: 'ALTER DATABASE', utility: 'alter_database', ddl: true },
  AlterDatabaseStmt: { command: 'ALTER DATABASE', utility: 'alter_database', ddl: true },
  AlterDefaultPrivilegesStmt: {
    command: 'ALTER DEFAULT PRIVILEGES',
    utility: 'alter_default_privileges',
    ddl: true,
  },
  AlterDomainStmt: { command: 'ALTER DOMAIN', ddl: true },
  AlterEnumStmt: { command: 'ALTER TYPE', ddl: true },
  AlterEventTrigStmt: { command: 'ALTER EVENT TRIGGER', utility: 'alter_event_trigger', ddl: true },
  AlterExtensionContentsStmt: { command: 'ALTER EXTENSION', utility: 'alter_extension', ddl: true },
  AlterExtensionStmt: { command: 'ALTER EXTENSION', utility: 'alter_extension', ddl: true },
  AlterFdwStmt: { command: 'ALTER FOREIGN DATA WRAPPER', utility: 'foreign_data', ddl: true },
  AlterForeignServerStmt: { command: 'ALTER SERVER', utility: 'foreign_data', ddl: true },
  AlterFunctionStmt: {
    command: (b) => `ALTER ${objectWords(b['objtype'])}`,
    utility: 'alter_function',
    ddl: true,
  },
  AlterObjectDependsStmt: { command: (b) => `ALTER ${objectWords(b['objectType'])}`, ddl: true },
  AlterObjectSchemaStmt: { command: (b) => `ALTER ${objectWords(b['objectType'])}`, ddl: true },
  AlterOpFamilyStmt: { command: 'ALTER OPERATOR FAMILY', ddl: true },
  AlterOperatorStmt: { command: 'ALTER OPERATOR', ddl: true },
  AlterOwnerStmt: {
    command: (b) => `ALTER ${objectWords(b['objectType'])}`,
    utility: 'alter_owner',
    ddl: true,
  },
  AlterPolicyStmt: { command: 'ALTER POLICY', utility: 'policy', ddl: true },
  AlterPublicationStmt: { command: 'ALTER PUBLICATION', utility: 'publication', ddl: true },
  AlterRoleSetStmt: { command: 'ALTER ROLE', utility: 'alter_role', ddl: true },
  AlterRoleStmt: { command: 'ALTER ROLE', utility: 'alter_role', ddl: true },
  AlterSeqStmt: { command: 'ALTER SEQUENCE', ddl: true },
  AlterStatsStmt: { command: 'ALTER STATISTICS', ddl: true },
  AlterSubscriptionStmt: { command: 'ALTER SUBSCRIPTION', utility: 'subscription', ddl: true },
  AlterSystemStmt: { command: 'ALTER SYSTEM', utility: 'alter_system', ddl: true },
  AlterTSConfigurationStmt: { command: 'ALTER TEXT SEARCH CONFIGURATION', ddl: true },
  AlterTSDictionaryStmt: { command: 'ALTER TEXT SEARCH DICTIONARY', ddl: true },
  AlterTableMoveAllStmt: { command: (b) => `ALTER ${objectWords(b['objtype'])}`, ddl: true },
  AlterTableSpaceOptionsStmt: { command: 'ALTER TABLESPACE', utility: 'tablespace', ddl: true },
  AlterTableStmt: { command: (b) => `ALTER ${objectWords(b['objtype'])}`, ddl: true },
  AlterTypeStmt: { command: 'ALTER TYPE', ddl: true },
  AlterUserMappingStmt: { command: 'ALTER USER MAPPING', utility: 'foreign_data', ddl: true },
  CallStmt: { command: 'CALL', utility: 'call' },
  CheckPointStmt: { command: 'CHECKPOINT', utility: 'checkpoint' },
  ClosePortalStmt: {
    command: (b) => (b['portalname'] === undefined ? 'CLOSE CURSOR ALL' : 'CLOSE CURSOR'),
    utility: 'cursor',
  },
  ClusterStmt: { command: 'CLUSTER', utility: 'cluster' },
  CommentStmt: { command: 'COMMENT', ddl: true },
  CompositeTypeStmt: { command: 'CREATE TYPE', ddl: true },
  ConstraintsSetStmt: { command: 'SET CONSTRAINTS', utility: 'set_constraints' },
  CopyStmt: { command: 'COPY', utility: 'copy' },
  CreateAmStmt: { command: 'CREATE ACCESS METHOD', ddl: true },
  CreateCastStmt: { command: 'CREATE CAST', ddl: true },
  CreateConversionStmt: { command: 'CREATE CONVERSION', ddl: true },
  CreateDomainStmt: { command: 'CREATE DOMAIN', ddl: true },
  CreateEnumStmt: { command: 'CREATE TYPE', ddl: true },
  CreateEventTrigStmt: { command: 'CREATE EVENT TRIGGER', utility: 'create_event_trigger', ddl: true },
  CreateExtensionStmt: { command: 'CREATE EXTENSION', utility: 'create_extension', ddl: true },
  CreateFdwStmt: { command: 'CREATE FOREIGN DATA WRAPPER', utility: 'foreign_data', ddl: true },
  CreateForeignServerStmt: { command: 'CREATE SERVER', utility: 'foreign_data', ddl: true },
  CreateForeignTableStmt: { command: 'CREATE FOREIGN TABLE', utility: 'foreign_data', ddl: true },
  CreateFunctionStmt: {
    command: (b) => (b['is_procedure'] === true ? 'CREATE PROCEDURE' : 'CREATE FUNCTION'),
    utility: 'create_function',
    ddl: true,
  },
  CreateOpClassStmt: { command: 'CREATE OPERATOR CLASS', ddl: true },
  CreateOpFamilyStmt: { command: 'CREATE OPERATOR FAMILY', ddl: true },
  CreatePLangStmt: { command: 'CREATE LANGUAGE', utility: 'create_language', ddl: true },
  CreatePolicyStmt: { command: 'CREATE POLICY', utility: 'policy', ddl: true },
  CreatePublicationStmt: { command: 'CREATE PUBLICATION', utility: 'publication', ddl: true },
  CreateRangeStmt: { command: 'CREATE TYPE', ddl: true },
  CreateRoleStmt: { command: 'CREATE ROLE', utility: 'create_role', ddl: true },
  CreateSchemaStmt: { command: 'CREATE SCHEMA', ddl: true },
  CreateSeqStmt: { command: 'CREATE SEQUENCE', ddl: true },
  CreateStatsStmt: { command: 'CREATE STATISTICS', ddl: true },
  CreateStmt: { command: 'CREATE TABLE', ddl: true },
  CreateSubscriptionStmt: { command: 'CREATE SUBSCRIPTION', utility: 'subscription', ddl: true },
  CreateTableAsStmt: {
    command: (b) => (b['objtype'] === 'OBJECT_MATVIEW' ? 'CREATE MATERIALIZED VIEW' : 'CREATE TABLE AS'),
    ddl: true,
  },
  CreateTableSpaceStmt: { command: 'CREATE TABLESPACE', utility: 'tablespace', ddl: true },
  CreateTransformStmt: { command: 'CREATE TRANSFORM', ddl: true },
  CreateTrigStmt: { command: 'CREATE TRIGGER', utility: 'create_trigger', ddl: true },
  CreateUserMappingStmt: { command: 'CREATE USER MAPPING', utility: 'foreign_data', ddl: true },
  CreatedbStmt: { command: 'CREATE DATABASE', utility: 'create_database', ddl: true },
  DeallocateStmt: {
    command: (b) => (b['isall'] === true ? 'DEALLOCATE ALL' : 'DEALLOCATE'),
    utility: 'deallocate',
  },
  DeclareCursorStmt: { command: 'DECLARE CURSOR', utility: 'cursor' },
  DefineStmt: { command: (b) => `CREATE ${objectWords(b['kind'])}`, ddl: true },
  DiscardStmt: {
    command: (b) => `DISCARD ${str(b, 'target').replace(/^DISCARD_/, '')}`,
    utility: 'discard',
  },
  DoStmt: { command: 'DO', utility: 'do' },
  DropOwnedStmt: { command: 'DROP OWNED', utility: 'drop_owned', ddl: true },
  DropRoleStmt: { command: 'DROP ROLE', utility: 'drop_role', ddl: true },
  DropStmt: { command: (b) => `DROP ${objectWords(b['removeType'])}`, ddl: true },
  DropSubscriptionStmt: { command: 'DROP SUBSCRIPTION', utility: 'subscription', ddl: true },
  DropTableSpaceStmt: { command: 'DROP TABLESPACE', utility: 'tablespace', ddl: true },
  DropUserMappingStmt: { command: 'DROP USER MAPPING', utility: 'foreign_data', ddl: true },
  DropdbStmt: { command: 'DROP DATABASE', utility: 'drop_database', ddl: true },
  ExecuteStmt: { command: 'EXECUTE', utility: 'execute' },
  ExplainStmt: { command: 'EXPLAIN', utility: 'explain' },
  FetchStmt: { command: (b) => (b['ismove'] === true ? 'MOVE' : 'FETCH'), utility: 'cursor' },
  GrantRoleStmt: {
    command: (b) => (b['is_grant'] === true ? 'GRANT ROLE' : 'REVOKE ROLE'),
    utility: (b) => (b['is_grant'] === true ? 'grant' : 'revoke'),
    ddl: true,
  },
  GrantStmt: {
    command: (b) => (b['is_grant'] === true ? 'GRANT' : 'REVOKE'),
    utility: (b) => (b['is_grant'] === true ? 'grant' : 'revoke'),
    ddl: true,
  },
  ImportForeignSchemaStmt: { command: 'IMPORT FOREIGN SCHEMA', utility: 'foreign_data', ddl: true },
  IndexStmt: { command: 'CREATE INDEX', ddl: true },
  ListenStmt: { command: 'LISTEN', utility: 'listen' },
  LoadStmt: { command: 'LOAD', utility: 'load' },
  LockStmt: { command: 'LOCK TABLE', utility: 'lock' },
  NotifyStmt: { command: 'NOTIFY', utility: 'notify' },
  PrepareStmt: { command: 'PREPARE', utility: 'prepare' },
  ReassignOwnedStmt: { command: 'REASSIGN OWNED', utility: 'reassign_owned', ddl: true },
  RefreshMatViewStmt: { command: 'REFRESH MATERIALIZED VIEW', ddl: true },
  ReindexStmt: { command: 'REINDEX', utility: 'reindex' },
  RenameStmt: {
    command: (b) => {
      const t = b['renameType'];
      const onRelation = t === 'OBJECT_COLUMN' || t === 'OBJECT_TABCONSTRAINT';
      return `ALTER ${objectWords(onRelation ? b['relationType'] : t)}`;
    },
    ddl: true,
  },
  RuleStmt: { command: 'CREATE RULE', utility: 'create_rule', ddl: true },
  SecLabelStmt: { command: 'SECURITY LABEL', utility: 'security_label', ddl: true },
  TransactionStmt: {
    command: (b) => TRANSACTION_COMMANDS[str(b, 'kind')] ?? 'TRANSACTION',
    utility: 'transaction',
  },
  TruncateStmt: { command: 'TRUNCATE', utility: 'truncate' },
  UnlistenStmt: { command: 'UNLISTEN', utility: 'unlisten' },
  VacuumStmt: {
    command: (b) => (b['is_vacuumcmd'] === true ? 'VACUUM' : 'ANALYZE'),
    utility: (b) => (b['is_vacuumcmd'] === true ? 'vacuum' : 'analyze'),
  },
  VariableSetStmt: {
    command: (b) => (str(b, 'kind').startsWith('VAR_RESET') ? 'RESET' : 'SET'),
    utility: (b) => (str(b, 'kind').startsWith('VAR_RESET') ? 'reset' : 'set'),
  },
  VariableShowStmt: { command: 'SHOW', utility: 'show' },
  ViewStmt: { command: 'CREATE VIEW', ddl: true },
};

/** `AlterTSDictionaryStmt` → `ALTER TS DICTIONARY` */
function fallbackCommand(node: string): string {
  return node
    .replace(/Stmt$/, '')
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toUpperCase();
}

const DDL_PREFIX = /^(Create|Alter|Drop|Define|Rename|Comment|Grant|Revoke|Import|Reassign|Refresh|SecLabel)/;

export function statementKind(node: string, body: Body): StatementKind {
  const rule = RULES[node];
  if (rule === undefined) {
    return {
      command: fallbackCommand(node),
      utility: fallbackCommand(node).toLowerCase().replace(/ /g, '_'),
      ddl: DDL_PREFIX.test(node),
    };
  }
  const command = typeof rule.command === 'function' ? rule.command(body) : rule.command;
  const utility = typeof rule.utility === 'function' ? rule.utility(body) : (rule.utility ?? null);
  return { command, utility, ddl: rule.ddl === true };
}

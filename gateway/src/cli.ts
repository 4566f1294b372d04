#!/usr/bin/env node
/**
 * pgward command line: serve, check-config, explain, replay. A bad flag or config value exits 2
 * with one line naming it.
 */
import { Command, CommanderError, Option } from 'commander';
import { checkConfigFile, ConfigError, loadConfig, type Config } from './config';
import { createLogger, startGateway, VERSION } from './main';

function die(message: string): never {
  process.stderr.write(`pgward: ${message}\n`);
  process.exit(2);
}

function loadOrDie(opts: {
  config?: string;
  listen?: string;
  upstream?: string;
  bundle?: string;
  adminListen?: string;
}): Config {
  try {
    return loadConfig({
      file: opts.config,
      env: process.env,
      flags: {
        listen: opts.listen,
        upstream: opts.upstream,
        bundle: opts.bundle,
        adminListen: opts.adminListen,
      },
    });
  } catch (err) {
    if (err instanceof ConfigError) die(err.message);
    throw err;
  }
}

export function buildCli(): Command {
  const program = new Command('pgward')
    .description('Policy-as-code gateway for the PostgreSQL wire protocol')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('serve')
    .description('run the gateway')
    .option('--config <file>', 'YAML configuration file (default: $PGWARD_CONFIG)')
    .option('--listen <host:port>', 'client listener (default 0.0.0.0:6432)')
    .option('--upstream <host:port>', 'PostgreSQL server (default 127.0.0.1:5432)')
    .option('--bundle <path-or-url>', 'OPA bundle (default wasm-build/out/bundle.tar.gz)')
    .option('--admin-listen <host:port>', 'sidecar listener (default 0.0.0.0:9432)')
    .action(
      async (opts: {
        config?: string;
        listen?: string;
        upstream?: string;
        bundle?: string;
        adminListen?: string;
      }) => {
        const config = loadOrDie(opts);
        const logger = createLogger(config.log.level);
        const gw = await startGateway(config, logger).catch((err: Error) => {
          logger.fatal({ err: err.message }, 'pgward failed to start');
          process.exit(1);
        });
        const stop = (signal: string): void => {
          logger.info({ signal }, 'signal received');
          void gw.shutdown().then(() => process.exit(0));
        };
        process.on('SIGTERM', () => stop('SIGTERM'));
        process.on('SIGINT', () => stop('SIGINT'));
        process.on('SIGHUP', () => {
          logger.info('SIGHUP: reloading the policy bundle');
          void gw.bundles.reload();
        });
      },
    );

  program
    .command('check-config')
    .description('validate a configuration file')
    .argument('<file>', 'YAML configuration file')
    .action((file: string) => {
      const r = checkConfigFile(file, process.env);
      if (!r.ok) die(r.error.message);
      process.stdout.write('config OK\n');
    });

  program
    .command('explain')
    .description('print the input document and the decision for one SQL text and connection')
    .argument('[sql]', 'SQL text (omit with --startup)')
    .option('--bundle <path>', 'bundle to evaluate with', 'wasm-build/out/bundle.tar.gz')
    .option('--entrypoint <path>', 'decision entrypoint', 'pgward/decision')
    .option('--user <name>', 'connection user', 'postgres')
    .option('--database <name>', 'connection database')
    .option('--application <name>', 'application_name')
    .option('--client-addr <ip>', 'client address', '127.0.0.1')
    .option('--tls', 'the client connected with TLS', false)
    .option('--startup', 'evaluate the startup phase instead of a Query', false)
    .addOption(
      new Option('--message <type>', 'message type for the SQL').choices(['Query', 'Parse']).default('Query'),
    )
    .action(async (sql: string | undefined, o: ExplainOptions) => {
      const { explain } = await import('./explain');
      const out = await explain(sql, o).catch((err: Error) => die(err.message));
      process.stdout.write(JSON.stringify(out, null, 2) + '\n');
      process.exitCode = out.decision.allow ? 0 : 1;
    });

  program
    .command('replay')
    .description('evaluate captured traffic offline against a bundle')
    .allowUnknownOption(true)
    .helpOption(false)
    .argument('[args...]')
    .action(async (args: string[]) => {
      const { runReplayCli } = await import('./replay/cli');
      process.exitCode = await runReplayCli(args);
    });

  return program;
}

export interface ExplainOptions {
  bundle: string;
  entrypoint: string;
  user: string;
  database?: string;
  application?: string;
  clientAddr: string;
  tls: boolean;
  startup: boolean;
  message: 'Query' | 'Parse';
}

if (require.main === module) {
  buildCli()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      if (err instanceof CommanderError) {
        if (err.exitCode === 0) process.exit(0);
        process.exit(2);
      }
      process.stderr.write(`pgward: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    });
}

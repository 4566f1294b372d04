#!/usr/bin/env node
/**
 * pgward command line: serve, check-config, explain, build, replay. A bad flag or config value exits 2
 * with one line naming it.
 */
import cluster from 'node:cluster';
import os from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import type { Logger } from 'pino';
import { checkConfigFile, ConfigError, loadConfig, type Config, type LoadConfigOptions } from './config';
import { ErrorCodes } from './errors';
import { createLogger, startGateway, VERSION, type Gateway } from './main';
import { MAX_WORKERS } from './cluster/cancel-key';
import { runPrimary } from './cluster/primary';
import { workerLinkFromEnv } from './cluster/worker-link';

function die(message: string): never {
  process.stderr.write(`pgward: ${message}\n`);
  process.exit(2);
}

type ServeOptions = {
  config?: string;
  listen?: string;
  upstream?: string;
  bundle?: string;
  adminListen?: string;
  workers?: string;
};

/** The same sources on start and on SIGHUP: the file, the environment, the flags. */
function configSources(opts: ServeOptions): LoadConfigOptions {
  return {
    file: opts.config,
    env: process.env,
    flags: {
      listen: opts.listen,
      upstream: opts.upstream,
      bundle: opts.bundle,
      adminListen: opts.adminListen,
      workers: opts.workers,
    },
  };
}

/**
 * SIGHUP: read the configuration again and apply what can change at run time (lifecycle/
 * config-reload.ts), logging the changed keys that need a restart; then reload the bundle. A config
 * that does not validate changes nothing (PGWARD_ERR_CONFIG_INVALID); the bundle is reloaded anyway.
 */
export async function reloadOnSighup(gw: Gateway, logger: Logger, load: () => Config): Promise<void> {
  let next: Config;
  try {
    next = load();
  } catch (err) {
    gw.metrics.configReloadsTotal.inc({ result: 'failure' });
    gw.metrics.countError(ErrorCodes.CONFIG_INVALID);
    logger.error(
      { code: ErrorCodes.CONFIG_INVALID, err: (err as Error).message },
      'config reload failed; the running configuration stays',
    );
    await gw.bundles.reload();
    return;
  }
  try {
    const r = await gw.reloadConfig(next);
    // A changed policy source was loaded by reloadConfig already.
    if (!r.applied.some((k) => k.startsWith('policy.'))) await gw.bundles.reload();
  } catch (err) {
    gw.metrics.configReloadsTotal.inc({ result: 'failure' });
    gw.metrics.countError(ErrorCodes.CONFIG_INVALID);
    logger.error(
      { code: ErrorCodes.CONFIG_INVALID, err: (err as Error).message },
      'config reload failed; the running configuration stays',
    );
  }
}

function loadOrDie(opts: ServeOptions): Config {
  try {
    return loadConfig(configSources(opts));
  } catch (err) {
    if (err instanceof ConfigError) die(err.message);
    throw err;
  }
}

/** The primary of `serve --workers N`: forks, routes, relays signals (cluster/primary.ts). */
async function servePrimary(config: Config, workers: number, logger: Logger): Promise<void> {
  const primary = await runPrimary(config, Math.min(workers, MAX_WORKERS), logger).catch((err: Error) => {
    logger.fatal({ err: err.message }, 'pgward failed to start');
    process.exit(1);
  });
  const stop = (signal: string): void => {
    logger.info({ signal }, 'signal received');
    void primary.stop(signal).then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    logger.info('SIGHUP: every worker reloads the configuration and the policy bundle');
    primary.reload();
  });
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
    .option('--workers <n>', 'worker processes (default cluster.workers; 0: the CPUs the process may use)')
    .action(async (opts: ServeOptions) => {
      const config = loadOrDie(opts);
      const logger = createLogger(config.log.level);
      const link = workerLinkFromEnv(process.env);
      const workers = config.cluster.workers === 0 ? os.availableParallelism() : config.cluster.workers;
      if (link === null && workers > 1 && cluster.isPrimary) return servePrimary(config, workers, logger);
      const gw = await startGateway(config, logger, link).catch((err: Error) => {
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
        logger.info('SIGHUP: reloading the configuration and the policy bundle');
        void reloadOnSighup(gw, logger, () => loadConfig(configSources(opts)));
      });
    });

  program
    .command('check-config')
    .description('validate a configuration file')
    .argument('<file>', 'YAML configuration file')
    .option(
      '--offline',
      'do not open the files the config names (TLS keys, token files): for CI, where they exist only in the cluster',
      false,
    )
    .action((file: string, o: { offline: boolean }) => {
      const r = checkConfigFile(file, process.env, { offline: o.offline });
      if (!r.ok) die(r.error.message);
      process.stdout.write(o.offline ? 'config OK (offline: referenced files not checked)\n' : 'config OK\n');
    });

  program
    .command('explain')
    .description('print the input document and the decision for one SQL text and connection')
    .argument('[sql]', 'SQL text (omit with --startup)')
    .option(
      '--bundle <path>',
      "bundle to evaluate with (default: the package's wasm-build/out/bundle.tar.gz)",
    )
    .option('--data <file>', "data document to evaluate with instead of the bundle's data.json")
    .option(
      '--input <file>',
      'JSON: a full input document, or a message to build one from ({"type": "Query"|"Parse"|"Bind"|"FunctionCall"|"StartupMessage", ...})',
    )
    .option('--time <rfc3339>', 'the decision time (input.time) instead of now')
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
    .command('build')
    .description(
      'build a Rego directory into a bundle: the pinned OPA (cd wasm-build && go tool opa), wasm target, ' +
        'the opa-wasm capabilities check, *_test.rego left out, the input paths the policy reads in the manifest',
    )
    .argument('<rego_dir>', 'directory of .rego files (and data.json)')
    .requiredOption('-o, --output <bundle>', 'bundle file to write (.tar.gz)')
    .option('--entrypoint <path>', 'decision entrypoint', 'pgward/decision')
    .option('--revision <rev>', 'bundle revision (default: derived from the sources)')
    .action(async (dir: string, o: { output: string; entrypoint: string; revision?: string }) => {
      const { buildBundle } = await import('./build');
      process.exitCode = buildBundle(dir, o);
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
  bundle?: string;
  data?: string;
  input?: string;
  time?: string;
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

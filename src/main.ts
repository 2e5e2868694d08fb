/**
 * `npm start`: configuration from the environment, the server, and a graceful shutdown.
 *
 * On SIGTERM or SIGINT the server stops accepting connections, lets the requests in flight
 * finish for up to SHUTDOWN_TIMEOUT_MS (then closes what is left), lets the inference batches
 * already running finish, releases the runtime's sessions and exits 0. Every file the server
 * writes (uploads, blobs, cache entries) is written to a temporary name and renamed, so a stop
 * at any moment leaves no half-written file under its real name. A second signal, or a
 * shutdown still not done 5 s after the deadline, exits at once with status 1.
 */
import { loadConfig } from './config';
import { log } from './log';
import { startServer } from './server';

/** Set once the configuration is read: start-up errors writing there say what to change. */
let cacheDir: string | undefined;

async function main() {
  const config = loadConfig();
  cacheDir = config.cacheDir;
  const server = await startServer(config);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    const started = Date.now();
    log.info({ signal, deadlineMs: config.shutdownTimeoutMs }, 'shutting down: finishing requests in flight');
    const hard = setTimeout(() => {
      log.error({ ms: Date.now() - started }, 'shutdown did not finish in time: exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs + 5000);
    hard.unref();
    try {
      await server.close();
      log.info({ ms: Date.now() - started }, 'stopped');
      process.exit(0);
    } catch (e) {
      log.error({ err: (e as Error).message }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

/** A start-up error, with what to change when it is CACHE_DIR that cannot be written (the only folder the server writes). */
function explain(e: NodeJS.ErrnoException): string {
  const notWritable = (e.code === 'EACCES' || e.code === 'EROFS') && cacheDir && e.path?.startsWith(cacheDir);
  return notWritable ? `${e.message}: CACHE_DIR (${cacheDir}) must be a folder this user (uid ${process.getuid?.()}) can write, e.g. a volume` : e.message;
}

main().catch((e: NodeJS.ErrnoException) => {
  log.fatal({ err: explain(e) }, 'convscope could not start');
  process.exit(1);
});

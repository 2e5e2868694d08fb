/** `npm start`: configuration from the environment, the server, and a clean shutdown. */
import { loadConfig } from './config';
import { log } from './log';
import { startServer } from './server';

async function main() {
  const config = loadConfig();
  const server = await startServer(config);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    await server.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((e) => {
  log.fatal({ err: (e as Error).message }, 'convscope could not start');
  process.exit(1);
});

import pino from 'pino';

/** One structured (JSON) logger for the process; LOG_LEVEL sets its level. */
export const log = pino({ level: process.env.LOG_LEVEL || 'info', base: { app: 'convscope' } });

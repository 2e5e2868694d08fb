/** Opaque global IDs (Relay): what the API's `id` fields hold and `Query.node(id)` takes. */
import { badInput } from './errors';

/** An ID is the base64url of a JSON array: [typename, ...parts]. */
export function toGlobalId(type: string, ...parts: (string | number)[]): string {
  return Buffer.from(JSON.stringify([type, ...parts])).toString('base64url');
}

export function fromGlobalId(id: string): { type: string; parts: (string | number)[] } {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(id, 'base64url').toString('utf8'));
  } catch {
    decoded = undefined;
  }
  if (!Array.isArray(decoded) || typeof decoded[0] !== 'string' || decoded.some((p) => typeof p !== 'string' && typeof p !== 'number')) {
    throw badInput(`"${id}" is not a convscope ID: use an \`id\` returned by the API`);
  }
  return { type: decoded[0], parts: decoded.slice(1) };
}

/** `npm run schema`: writes schema.graphql at the repository root. */
import fs from 'node:fs';
import path from 'node:path';
import { schemaSdl } from './schema';

const file = path.resolve(__dirname, '..', '..', 'schema.graphql');
fs.writeFileSync(file, schemaSdl());
console.log(`wrote ${file}`);

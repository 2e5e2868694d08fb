/** Where the repository and the test fixtures are (dist/test/x.js → the repository root). */
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');
export const FIXTURE_MODELS = path.join(FIXTURES, 'models');

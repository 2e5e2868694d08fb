// ESLint (flat config): typescript-eslint's recommended rules, import cycles, and the layer
// boundaries of docs/architecture.md. Formatting is Prettier's (`npm run format`), not lint's.
import js from '@eslint/js';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import reactHooks from 'eslint-plugin-react-hooks';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** The layers below the service layer: they know nothing of GraphQL, HTTP or the API's errors. */
const LOWER_LAYERS = ['./src/compiler', './src/engine', './src/onnx', './src/tfjs', './src/images', './src/featvis'];
/** The GraphQL and HTTP layers, which nothing under them may import. */
const API = ['./resolvers', './src/http', './src/server.ts', './src/schema.ts', './src/context.ts'];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.cache/', 'src/onnx/onnx.proto.json'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.{ts,tsx,mjs}'],
    plugins: { 'import-x': importX },
    settings: {
      // Relative imports name .ts files without their extension; the import graph is read with the TypeScript parser.
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.tsx', '.js', '.mjs', '.json', '.node'] })],
      'import-x/extensions': ['.ts', '.tsx', '.js', '.mjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts', '.tsx'] },
    },
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // No import cycles. The runtime loads its worker with a lazy require(), the one deliberate exception.
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-self-import': 'error',
      'import-x/no-useless-path-segments': 'error',
      'import-x/no-duplicates': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // Decorated classes and interfaces that only merge declarations are the type-graphql way.
      '@typescript-eslint/no-unsafe-declaration-merging': 'off',
      'prefer-const': ['error', { destructuring: 'all' }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-console': 'off',
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      // Each layer imports only those below it (docs/architecture.md).
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            {
              target: LOWER_LAYERS,
              from: [...API, './src/errors.ts', './src/service', './src/inference.ts', './src/index'],
              message: 'compiler, engine, onnx and images sit below the service layer: throw plain errors and let src/errors.ts map them.',
            },
            {
              target: ['./src/inference.ts', './src/index', './src/cache', './src/registry'],
              from: [...API, './src/service'],
              message: 'results, indexes, caches and registries sit below the service layer.',
            },
            {
              target: ['./src/service'],
              from: API,
              message: 'the service layer is called with plain arguments: it knows no resolvers, HTTP or GraphQL context.',
            },
          ],
        },
      ],
    },
  },
  {
    files: LOWER_LAYERS.map((dir) => `${dir.slice(2)}/**/*.ts`),
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['graphql', 'type-graphql', '@apollo/*', 'express'], message: 'the lower layers know nothing of GraphQL or HTTP (docs/architecture.md).' },
          ],
        },
      ],
    },
  },
  {
    // Tests, benchmarks and scripts read JSON answers (GraphQL responses, manifests) as `any`.
    files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Browser code (React), bundled by esbuild.
    files: ['src/web/**/*.{ts,tsx}'],
    plugins: { 'react-hooks': reactHooks },
    languageOptions: { globals: { ...globals.browser } },
    rules: reactHooks.configs.recommended.rules,
  },
);

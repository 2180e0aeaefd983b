import { defineConfig } from 'vite';

// Defaults, as a site would have them; the output stays in dist/.
export default defineConfig({
  build: { outDir: 'dist', emptyOutDir: true },
  logLevel: 'warn',
});
